// The company defaults, decided once (provisioning/server/defaults.ts): each applies only where
// the user or the location has none of its own; and a phone's notice state from its row.
import { describe, expect, it } from 'vitest';
import { effectiveAddress, effectiveCallback, noticeFallbacks, notificationEmails } from '../../provisioning/server/defaults.js';
import { noticeStatus } from '../../provisioning/server/notice-status.js';
import type { Account, Location, User } from '../../provisioning/server/db/repo.js';

const home = {
  address: { country: 'US', houseNumber: '9', street: 'Elm St', city: 'Austin', state: 'TX', postalCode: '78701' },
  timeZone: 'America/Chicago',
};
const office = {
  address: { country: 'US', houseNumber: '500', street: 'Market St', city: 'San Francisco', state: 'CA', postalCode: '94105' },
  floor: '3',
  timeZone: 'America/Los_Angeles',
};
const account = {
  name: 'Example Corp',
  defaultAddress: office,
  defaultCallback: { number: '+14085550150', displayName: 'Example Security', language: 'es' },
  emergencyContacts: ['desk@example.com', 'Ops@example.com'],
} as unknown as Account;
const location = {
  code: 'HQ',
  name: 'Head office',
  timeZone: 'America/New_York',
  civic: { country: 'US', A1: 'NY', A3: 'New York', RD: 'Broadway', HNO: '1', PC: '10004' },
  adminEmails: ['security@example.com'],
} as unknown as Location;
const user = (over: Partial<User> = {}) =>
  ({ locationId: null, ownAddress: null, displayName: 'Alice Smith', callback: null, emails: [], ...over }) as User;

describe('company defaults', () => {
  it('the address: the location, else the own address, else the company default, else none', () => {
    expect(effectiveAddress(user({ locationId: 1 }), location, account)).toMatchObject({ source: 'location', locationCode: 'HQ' });
    expect(effectiveAddress(user({ ownAddress: home as never }), null, account)).toEqual({
      source: 'own',
      civic: { country: 'US', A1: 'TX', A3: 'Austin', RD: 'Elm St', HNO: '9', PC: '78701' },
      name: "Alice Smith's own address",
      timeZone: 'America/Chicago',
    });
    expect(effectiveAddress(user(), null, account)).toMatchObject({
      source: 'company',
      civic: { A3: 'San Francisco', FLR: '3', NAM: 'Example Corp' },
      timeZone: 'America/Los_Angeles',
    });
    expect(effectiveAddress(user(), null, { ...account, defaultAddress: null })).toBeNull();
  });

  it("the callback: the user's number and name, else the company's number with its own name", () => {
    expect(effectiveCallback(user({ callback: '+14085550100' }), account)).toEqual({
      source: 'user',
      callback: '+14085550100',
      displayName: 'Alice Smith',
    });
    expect(effectiveCallback(user(), account)).toEqual({ source: 'company', callback: '+14085550150', displayName: 'Example Security' });
    expect(effectiveCallback(user(), { defaultCallback: null })).toBeNull();
  });

  it('the emails: the company contacts stand in for an empty user list and for a location without admins, once each', () => {
    expect(notificationEmails(user({ emails: ['alice@example.com'] }), location, account)).toEqual([
      'alice@example.com',
      'security@example.com',
    ]);
    expect(notificationEmails(user(), location, account)).toEqual(['desk@example.com', 'Ops@example.com', 'security@example.com']);
    expect(notificationEmails(user({ emails: ['alice@example.com'] }), null, account)).toEqual([
      'alice@example.com',
      'desk@example.com',
      'Ops@example.com',
    ]);
    // No user, no location: still the company contacts, each once.
    expect(notificationEmails(null, null, account)).toEqual(['desk@example.com', 'Ops@example.com']);
    expect(notificationEmails(user(), null, { emergencyContacts: [] })).toEqual([]);
  });

  it('what notices use when the user leaves it out', () => {
    expect(noticeFallbacks(account, user({ ownAddress: home as never }), null)).toEqual({
      placeName: "Alice Smith's own address",
      timeZone: 'America/Chicago',
      callback: '+14085550150',
    });
  });
});

describe("a phone's notice", () => {
  const ack = { version: 3, hash: 'h3', shownAt: 's', acknowledgedAt: '2026-12-05T08:00:00.000Z', via: 'keypad', userId: 7 };
  it('acknowledged only for the address document it holds; shown since it applied a newer one', () => {
    expect(noticeStatus({ appliedVersion: 3, appliedHash: 'h3', appliedAt: 'a3', noticeAck: ack })).toMatchObject({
      state: 'acknowledged',
      addressVersion: 3,
      via: 'keypad',
      userId: 7,
    });
    expect(noticeStatus({ appliedVersion: 4, appliedHash: 'h4', appliedAt: 'a4', noticeAck: ack })).toMatchObject({
      state: 'shown',
      addressVersion: 4,
      shownAt: 'a4',
      acknowledgedAt: null,
      previousAcknowledgedVersion: 3,
    });
    // Same version, other content (re-issued after a restored database): not the one acknowledged.
    expect(noticeStatus({ appliedVersion: 3, appliedHash: 'other', appliedAt: 'a', noticeAck: ack }).state).toBe('shown');
    expect(noticeStatus({ appliedVersion: null, appliedHash: null, appliedAt: null, noticeAck: null }).state).toBe('none');
  });
});
