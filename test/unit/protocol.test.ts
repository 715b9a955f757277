import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  canonicalJson,
  decodePayload,
  documentHash,
  isValidCallback,
  MAX_PAYLOAD_BYTES,
  parseTopic,
  topicFor,
  topicFilter,
  validateAddress,
  verifyDocument,
  signDocument,
  type TopicKind,
} from '../../provisioning/protocol/index.js';
import { sampleAddress, testKeys } from '../helpers/address.js';

const fields = (doc: Parameters<typeof validateAddress>[0]) => validateAddress(doc).map((i) => i.field);

describe('address validation (US and Canada)', () => {
  it('accepts a complete US address and a complete Canadian one', () => {
    expect(validateAddress(sampleAddress())).toEqual([]);
    const ca = sampleAddress({ civic: { country: 'CA', A1: 'ON', A3: 'Ottawa', RD: 'Wellington', STS: 'St', HNO: '111', PC: 'K1A 0A9' }, callback: '+16135550123' });
    expect(validateAddress(ca)).toEqual([]);
  });

  it.each(['country', 'A1', 'A3', 'RD', 'HNO', 'PC'] as const)('requires %s', (key) => {
    const doc = sampleAddress();
    delete doc.civic[key];
    expect(fields(doc)).toContain(`civic.${key}`);
  });

  it('checks the state or province against the country', () => {
    expect(fields(sampleAddress({ civic: { ...sampleAddress().civic, A1: 'ON' } }))).toContain('civic.A1');
    expect(fields(sampleAddress({ civic: { ...sampleAddress().civic, A1: 'ZZ' } }))).toContain('civic.A1');
    expect(fields(sampleAddress({ civic: { ...sampleAddress().civic, country: 'MX' } }))).toContain('civic.country');
  });

  it.each([
    ['US', '95110', true], ['US', '95110-1234', true], ['US', '9511', false], ['US', '95110-12', false], ['US', 'K1A 0A9', false],
    ['CA', 'K1A 0A9', true], ['CA', 'K1A0A9', true], ['CA', 'D1A 0A9', false], ['CA', 'W1A 0A9', false], ['CA', '95110', false],
  ])('postal code %s %s valid=%s', (country, pc, ok) => {
    const doc = sampleAddress({ civic: { ...sampleAddress().civic, country, A1: country === 'US' ? 'CA' : 'ON', PC: pc } });
    expect(fields(doc).includes('civic.PC')).toBe(!ok);
  });

  it.each([
    ['+14085550100', true], ['+442071234567', true], ['4085550100', false], ['+1408555010', false],
    ['+11085550100', false], ['+14081550100', false], ['+19115550100', false], ['+14085559110', true], ['+14089110100', false], ['+14084115555', false],
  ])('callback %s valid=%s', (n, ok) => {
    expect(isValidCallback(n)).toBe(ok);
  });

  it('display name: letters, digits, single spaces', () => {
    expect(fields(sampleAddress({ displayName: 'Zoë 2nd Floor' }))).toEqual([]);
    for (const bad of ['', ' Lead', 'Two  Spaces', 'Semi;colon', 'x'.repeat(65), '<script>']) {
      expect(fields(sampleAddress({ displayName: bad }))).toContain('displayName');
    }
  });

  it('refuses control characters in civic text', () => {
    expect(fields(sampleAddress({ civic: { ...sampleAddress().civic, ROOM: 'a\u0000b' } }))).toContain('civic.ROOM');
  });
});

describe('canonical JSON and Ed25519 signatures', () => {
  it('is independent of key order and carries no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null } })).toBe('{"a":{"c":null,"d":[1,"x"]},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson({ a: undefined, b: true })).toBe('{"b":true}');
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(TypeError);
  });

  it('verifies what was signed, whatever the key order on the wire', () => {
    const keys = testKeys();
    const doc = sampleAddress();
    const sig = signDocument(doc, keys.privateKey);
    const reordered = Object.fromEntries(Object.entries(doc).reverse());
    expect(verifyDocument(reordered, sig, keys.publicKey)).toBe(true);
    expect(documentHash(reordered)).toBe(documentHash(doc));
  });

  it('rejects a changed document, another key, and malformed signatures', () => {
    const keys = testKeys();
    const other = testKeys();
    const doc = sampleAddress();
    const sig = signDocument(doc, keys.privateKey);
    expect(verifyDocument({ ...doc, civic: { ...doc.civic, ROOM: '211' } }, sig, keys.publicKey)).toBe(false);
    expect(verifyDocument(doc, sig, other.publicKey)).toBe(false);
    for (const bad of ['', 'abc', `${sig.slice(0, -1)}!`, sig + 'A']) expect(verifyDocument(doc, bad, keys.publicKey)).toBe(false);
    expect(verifyDocument({ x: Number.POSITIVE_INFINITY }, sig, keys.publicKey)).toBe(false);
  });
});

describe('topics', () => {
  it('round-trips every kind', () => {
    expect(topicFor('phone-1', 'address/set')).toBe('e911/v1/phone-1/address/set');
    expect(parseTopic('e911/v1/phone-1/address/set')).toEqual({ deviceId: 'phone-1', kind: 'address/set' });
    expect(parseTopic(topicFor('p.2', 'cmd', 'ping'))).toEqual({ deviceId: 'p.2', kind: 'cmd', name: 'ping' });
    expect(topicFilter('events')).toBe('e911/v1/+/events');
  });
  it('refuses what is not ours', () => {
    for (const t of ['e911/v1/phone-1', 'e911/v2/p/status', 'e911/v1/+/status', 'e911/v1/p/cmd/', 'e911/v1/p/cmd/Bad!', 'x/e911/v1/p/status', 'e911/v1/p/statusx']) {
      expect(parseTopic(t)).toBeNull();
    }
    expect(() => topicFor('bad/id', 'status')).toThrow();
    expect(() => topicFor('p', 'cmd')).toThrow();
  });
});

const KINDS: TopicKind[] = ['status', 'location', 'address/state', 'events', 'address/set', 'config/set', 'cmd', 'response'];

describe('payload decoding', () => {
  it('gives each kind of bad input its own reason', () => {
    expect(decodePayload('status', Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20))).toMatchObject({ ok: false, code: 'too-large' });
    expect(decodePayload('status', '{"v":1,')).toMatchObject({ ok: false, code: 'invalid-json' });
    expect(decodePayload('status', '[1]')).toMatchObject({ ok: false, code: 'not-an-object' });
    expect(decodePayload('status', '{"v":2,"state":"online","deviceId":"p"}')).toMatchObject({ ok: false, code: 'unknown-version' });
    const invalid = decodePayload('status', '{"v":1,"state":"maybe","deviceId":"p"}');
    expect(invalid).toMatchObject({ ok: false, code: 'invalid' });
    expect(!invalid.ok && invalid.reason).toMatch(/state/);
    expect(decodePayload('status', '{"v":1,"state":"online","deviceId":"p"}')).toEqual({ ok: true, value: { v: 1, state: 'online', deviceId: 'p' } });
  });

  it('survives 10,000+ malformed payloads: no throw escapes, each gets a reason', () => {
    const keys = testKeys();
    const valid = JSON.parse(JSON.stringify({ v: 1, doc: sampleAddress(), sig: signDocument(sampleAddress(), keys.privateKey) }));
    // Mutations of a valid push: one member replaced by a value of another type, or removed.
    const mutated = fc
      .tuple(fc.constantFrom('v', 'doc', 'sig', 'doc.version', 'doc.civic', 'doc.callback', 'doc.deviceId', 'doc.civic.HNO', 'doc.extra'), fc.oneof(fc.jsonValue(), fc.constant(undefined)))
      .map(([path, val]) => {
        const copy = structuredClone(valid) as Record<string, unknown>;
        const parts = path.split('.');
        let cur = copy as Record<string, unknown>;
        for (const p of parts.slice(0, -1)) cur = cur[p] as Record<string, unknown>;
        const last = parts[parts.length - 1]!;
        // Replace the member with any JSON value, or delete it ('doc.extra' adds an unknown member).
        if (val === undefined) delete cur[last];
        else cur[last] = val;
        return JSON.stringify(copy);
      })
      .filter((p) => p !== JSON.stringify(valid)); // replaced by the value it had: not a mutation
    const garbage = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.string({ maxLength: 300 }),
      fc.jsonValue().map((v) => JSON.stringify(v) ?? 'undefined'),
      mutated,
    );
    let count = 0;
    fc.assert(
      fc.property(garbage, fc.constantFrom(...KINDS), (payload, kind) => {
        count++;
        const r = decodePayload(kind, payload);
        if (r.ok) {
          // Only a payload that really is valid may pass: re-encoding must decode to the same value.
          expect(decodePayload(kind, JSON.stringify(r.value))).toEqual(r);
          return;
        }
        expect(r.reason.length).toBeGreaterThan(0);
      }),
      { numRuns: 10_000 },
    );
    // A mutated push may still parse (a string for a string), but then it must not verify or validate.
    fc.assert(
      fc.property(mutated, (payload) => {
        count++;
        const r = decodePayload('address/set', payload);
        if (r.ok) expect(validateAddress(r.value.doc).length === 0 && verifyDocument(r.value.doc, r.value.sig, keys.publicKey)).toBe(false);
      }),
      { numRuns: 2_000 },
    );
    expect(count).toBeGreaterThanOrEqual(12_000);
  });
});
