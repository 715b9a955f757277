// Address documents and signed pushes for tests.
import type { AddressDocument } from '../../provisioning/protocol/address.js';
import { generateSigningKeyPair, privateKeyFromText, publicKeyFromText, signDocument } from '../../provisioning/protocol/signing.js';

export function sampleAddress(over: Partial<AddressDocument> = {}): AddressDocument {
  return {
    v: 1,
    deviceId: 'phone-1',
    version: 1,
    issuedAt: '2026-11-22T07:00:00.000Z',
    civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', STS: 'St', HNO: '100', FLR: '2', ROOM: '210', BLD: 'A', PC: '95110' },
    callback: '+14085550100',
    displayName: 'Front Desk',
    ...over,
  };
}

export function testKeys() {
  const pair = generateSigningKeyPair();
  return { pair, privateKey: privateKeyFromText(pair), publicKey: publicKeyFromText(pair.publicKey) };
}

export function signedPush(doc: AddressDocument, keys: ReturnType<typeof testKeys>): string {
  return JSON.stringify({ v: 1, doc, sig: signDocument(doc, keys.privateKey) });
}

/** Another building's civic address, as lldpcli takes it for a switch port's LLDP-MED location. */
export const TASMAN_LLDPCLI: readonly string[] = [
  'country',
  'US',
  'country-subdivision',
  'CA',
  'city',
  'San Jose',
  'street',
  'Tasman',
  'street-suffix',
  'Drive',
  'number',
  '170',
  'zip',
  '95134',
  'building',
  'B4',
  'floor',
  '3',
];
