// The server's Ed25519 signing key: generated once, kept in a 0600 file.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../common/atomic-file.js';
import path from 'node:path';
import { generateSigningKeyPair, type KeyPairText } from '../protocol/signing.js';

export function loadOrCreateKeyPair(file: string): { pair: KeyPairText; created: boolean } {
  if (existsSync(file)) {
    const pair = JSON.parse(readFileSync(file, 'utf8')) as KeyPairText;
    if (typeof pair.publicKey !== 'string' || typeof pair.privateKey !== 'string') {
      throw new Error(`${file} is not a key pair file`);
    }
    return { pair, created: false };
  }
  const pair = generateSigningKeyPair();
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Written whole or not at all, and synced: a crash or power cut never leaves half a key behind.
  writeFileAtomic(file, `${JSON.stringify(pair, null, 2)}\n`, 0o600);
  return { pair, created: true };
}
