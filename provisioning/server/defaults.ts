// What a user's phone sends and whom a call tells, once the company defaults are counted:
// each default applies wherever the user (or the location) has none of its own. One place,
// so the push, the E911 precondition and the notices cannot disagree.
import type { CivicAddress } from '../protocol/address.js';
import { postalToCivic } from '../protocol/locations.js';
import type { Account, Location, User } from './db/repo.js';
import type { PlaceAddress } from './validation.js';

export type AddressSource = 'location' | 'own' | 'company';

export interface EffectiveAddress {
  source: AddressSource;
  civic: CivicAddress;
  /** The location's code; none for an own or the company's address. */
  locationCode?: string;
  /** What notices call the place. */
  name: string;
  timeZone: string;
}

/** A place address (own or company) in the civic form the phones receive. */
export function placeCivic(p: PlaceAddress, name?: string): CivicAddress {
  return postalToCivic(p.address, { name, building: p.building, floor: p.floor, room: p.room });
}

/**
 * The user's location, else their own address (works from home), else the company's default
 * address; null when there is none of the three.
 */
export function effectiveAddress(
  user: Pick<User, 'locationId' | 'ownAddress' | 'displayName'>,
  location: Location | null | undefined,
  account: Pick<Account, 'name' | 'defaultAddress'>,
): EffectiveAddress | null {
  if (location)
    return { source: 'location', civic: location.civic, locationCode: location.code, name: location.name, timeZone: location.timeZone };
  if (user.ownAddress)
    return {
      source: 'own',
      civic: placeCivic(user.ownAddress),
      name: `${user.displayName}'s own address`,
      timeZone: user.ownAddress.timeZone,
    };
  if (account.defaultAddress)
    return {
      source: 'company',
      civic: placeCivic(account.defaultAddress, account.name || undefined),
      name: 'the company default address',
      timeZone: account.defaultAddress.timeZone,
    };
  return null;
}

export interface EffectiveCallback {
  source: 'user' | 'company';
  callback: string;
  /** The name sent with the number: the user's, or the company callback's own name. */
  displayName: string;
}

/** The user's callback number with their name, else the company's number with its name. */
export function effectiveCallback(
  user: Pick<User, 'callback' | 'displayName'>,
  account: Pick<Account, 'defaultCallback'>,
): EffectiveCallback | null {
  if (user.callback) return { source: 'user', callback: user.callback, displayName: user.displayName };
  const d = account.defaultCallback;
  return d ? { source: 'company', callback: d.number, displayName: d.displayName } : null;
}

/**
 * Who is emailed about a call: the user's list, or the company contacts when the user has
 * none (or the phone has no user); and the location's admins, or the company contacts when
 * the location has none (or the user has no location). Case-insensitively once each.
 */
export function notificationEmails(
  user: Pick<User, 'emails'> | null,
  location: Pick<Location, 'adminEmails'> | null,
  account: Pick<Account, 'emergencyContacts'>,
): string[] {
  const company = account.emergencyContacts;
  const userPart = user?.emails.length ? user.emails : company;
  const locationPart = location?.adminEmails.length ? location.adminEmails : company;
  const out = new Map<string, string>();
  for (const e of [...userPart, ...locationPart]) if (!out.has(e.toLowerCase())) out.set(e.toLowerCase(), e);
  return [...out.values()];
}

/** What a notice uses when the event and the user leave a fact out. */
export interface NoticeFallbacks {
  placeName: string | null;
  timeZone: string | null;
  callback: string | null;
}

export function noticeFallbacks(account: Account, user: User | null, location: Location | null): NoticeFallbacks {
  const place = user ? effectiveAddress(user, location, account) : null;
  return {
    placeName: place?.name ?? null,
    timeZone: place?.timeZone ?? account.defaultAddress?.timeZone ?? null,
    callback: user?.callback ?? account.defaultCallback?.number ?? null,
  };
}
