// Ed25519 signatures over the canonical form of a document (node:crypto only).
// Keys travel as base64url of the raw 32-byte key, short enough for a config file.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical.js';

export interface KeyPairText {
  /** base64url raw public key (32 bytes) */
  publicKey: string;
  /** base64url raw private key seed (32 bytes) */
  privateKey: string;
}

export function generateSigningKeyPair(): KeyPairText {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return { publicKey: publicKey.export({ format: 'jwk' }).x!, privateKey: jwk.d! };
}

export function publicKeyFromText(x: string): KeyObject {
  if (!/^[A-Za-z0-9_-]{43}$/.test(x)) throw new TypeError('public key must be 43 base64url characters (32 bytes)');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
}

export function privateKeyFromText(pair: KeyPairText): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: pair.publicKey, d: pair.privateKey }, format: 'jwk' });
}

export function signDocument(doc: unknown, privateKey: KeyObject): string {
  return sign(null, Buffer.from(canonicalJson(doc), 'utf8'), privateKey).toString('base64url');
}

/** False for a bad signature or a malformed one; never throws for bad input. */
export function verifyDocument(doc: unknown, signature: string, publicKey: KeyObject): boolean {
  if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  try {
    return verify(null, Buffer.from(canonicalJson(doc), 'utf8'), publicKey, Buffer.from(signature, 'base64url'));
  } catch {
    // canonicalJson refuses values JSON cannot carry; such a document was never signed by us.
    return false;
  }
}

/** sha256 of the canonical form: the identity of a document in address/state. */
export function documentHash(doc: unknown): string {
  return createHash('sha256').update(canonicalJson(doc)).digest('hex');
}
