// The postal-address form of a location, its RFC 5139 mapping, and the locations push schema.
import { describe, expect, it } from 'vitest';
import { postalToCivic, validatePostalAddress, type PostalAddress } from '../../provisioning/protocol/locations.js';
import { decodePayload, MAX_PAYLOAD_BYTES } from '../../provisioning/protocol/messages.js';
import { parseTopic, topicFor } from '../../provisioning/protocol/topics.js';

const hq: PostalAddress = {
  country: 'US',
  houseNumber: '100',
  street: 'Main St',
  street2: 'Suite 200',
  city: 'San Jose',
  state: 'CA',
  postalCode: '95110',
  plus4: '1234',
};

describe('postal address to civic elements', () => {
  it('maps each field to its RFC 5139 element, ZIP+4 into PC', () => {
    expect(postalToCivic(hq, { name: 'Example Corp', building: 'A', floor: '2', room: '210' })).toEqual({
      country: 'US',
      A1: 'CA',
      A3: 'San Jose',
      RD: 'Main St',
      HNO: '100',
      LOC: 'Suite 200',
      PC: '95110-1234',
      NAM: 'Example Corp',
      BLD: 'A',
      FLR: '2',
      ROOM: '210',
    });
  });
  it('drops empty optional fields and upper-cases codes', () => {
    expect(postalToCivic({ ...hq, country: 'us', state: 'ca', street2: '  ', plus4: '' })).toEqual({
      country: 'US',
      A1: 'CA',
      A3: 'San Jose',
      RD: 'Main St',
      HNO: '100',
      PC: '95110',
    });
  });
  it('accepts valid US and Canadian addresses', () => {
    expect(validatePostalAddress(hq)).toEqual([]);
    expect(
      validatePostalAddress({ country: 'CA', houseNumber: '24', street: 'Sussex Dr', city: 'Ottawa', state: 'ON', postalCode: 'K1M 1M4' }),
    ).toEqual([]);
  });
  it('names each problem by its postal field', () => {
    const fields = (p: PostalAddress) =>
      validatePostalAddress(p)
        .map((i) => i.field)
        .sort();
    expect(fields({ ...hq, state: 'ON' })).toEqual(['state']);
    expect(fields({ ...hq, postalCode: '9511' })).toEqual(['postalCode']);
    expect(fields({ ...hq, plus4: '12a4' })).toEqual(['plus4']);
    expect(fields({ ...hq, country: 'CA', state: 'ON', postalCode: 'K1M 1M4', plus4: '1234' })).toEqual(['plus4']);
    expect(fields({ ...hq, postalCode: '95110-1234', plus4: '1234' })).toEqual(['postalCode']);
    expect(fields({ ...hq, country: 'MX' })).toContain('country');
    expect(fields({ ...hq, houseNumber: ' ', street: '', city: '' })).toEqual(['city', 'houseNumber', 'street']);
    expect(fields({ ...hq, street: 'Main\u0007St' })).toEqual(['street']);
  });
});

describe('locations push', () => {
  const doc = {
    v: 1,
    deviceId: 'phone-1',
    version: 3,
    issuedAt: '2026-11-22T07:00:00.000Z',
    recommendations: true,
    assignedLocationId: '1',
    locations: [{ id: '1', code: 'HQ', name: 'HQ', civic: postalToCivic(hq), cidrs: ['10.1.0.0/16', '2001:db8::/48'] }],
  };
  it('has its own topic and decodes a signed document', () => {
    expect(parseTopic(topicFor('phone-1', 'locations/set'))).toEqual({ deviceId: 'phone-1', kind: 'locations/set' });
    expect(decodePayload('locations/set', JSON.stringify({ v: 1, doc, sig: 'x' }))).toMatchObject({ ok: true });
    expect(decodePayload('locations/set', JSON.stringify({ v: 1, doc: { ...doc, extra: 1 }, sig: 'x' }))).toMatchObject({
      ok: false,
      code: 'invalid',
    });
  });
  it('may exceed the ordinary payload limit, up to its own', () => {
    const many = Array.from({ length: 400 }, (_, i) => ({ ...doc.locations[0]!, id: String(i), name: 'x'.repeat(100) }));
    const text = JSON.stringify({ v: 1, doc: { ...doc, locations: many }, sig: 'x' });
    expect(text.length).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    expect(decodePayload('locations/set', text)).toMatchObject({ ok: true });
  });
});
