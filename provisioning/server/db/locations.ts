// Locations: a postal address, where it is (building, floor, room), and how phones
// are placed there (IP groups, switch ports); the civic form is derived on reading.
import { postalToCivic, type PostalAddress } from '../../protocol/locations.js';
import type { LocationInput } from '../validation.js';
import type { Sql } from './sql.js';
import { int, json, optionalText, rowMapper, text, type Row } from './rows.js';
import type { Location } from './types.js';

export type LocationIpGroups = Pick<Location, 'id' | 'code' | 'name' | 'ipGroups'>;

const toAddress = rowMapper<PostalAddress>({
  country: text('country'),
  houseNumber: text('house_number'),
  street: text('street'),
  city: text('city'),
  state: text('state'),
  postalCode: text('postal_code'),
  houseNumberSuffix: optionalText('house_number_suffix'),
  street2: optionalText('street2'),
  plus4: optionalText('plus4'),
});

/** The place as postalToCivic reads it (an empty string stays: it is not "none"). */
const placeOf = (r: Row) => {
  const opt = (v: unknown) => (v === null || v === undefined ? undefined : (v as string));
  return { name: r.name as string, building: opt(r.building), floor: opt(r.floor), room: opt(r.room) };
};

export const toLocation = rowMapper<Location>({
  id: int('id'),
  code: text('code'),
  name: text('name'),
  address: toAddress,
  building: optionalText('building'),
  floor: optionalText('floor'),
  room: optionalText('room'),
  timeZone: text('time_zone'),
  ipGroups: json('ip_groups', []),
  switchPorts: json('switch_ports', []),
  adminEmails: json('admin_emails', []),
  smsNumbers: json('sms_numbers', []),
  callNumbers: json('call_numbers', []),
  language: text('language'),
  civic: (r) => postalToCivic(toAddress(r), placeOf(r)),
  createdAt: text('created_at'),
  updatedAt: text('updated_at'),
});

export class LocationStore {
  constructor(
    private readonly s: Sql,
    private readonly acct: () => string,
  ) {}

  async locations(): Promise<Location[]> {
    return ((await this.s.all('SELECT * FROM locations WHERE account_id = ? ORDER BY code', [this.acct()])) as Row[]).map(toLocation);
  }

  /** Each location that has IP groups, with those groups only: the call-time zone lookup reads nothing else. */
  async ipGroupsOfLocations(): Promise<LocationIpGroups[]> {
    return (
      (await this.s.all("SELECT id, code, name, ip_groups FROM locations WHERE account_id = ? AND ip_groups != '[]'", [
        this.acct(),
      ])) as Row[]
    ).map((r) => ({
      id: r.id as number,
      code: r.code as string,
      name: r.name as string,
      ipGroups: JSON.parse(r.ip_groups as string) as Location['ipGroups'],
    }));
  }

  async location(id: number): Promise<Location | null> {
    const r = (await this.s.get('SELECT * FROM locations WHERE id = ? AND account_id = ?', [id, this.acct()])) as Row | undefined;
    return r ? toLocation(r) : null;
  }

  async locationByCode(code: string): Promise<Location | null> {
    const r = (await this.s.get('SELECT * FROM locations WHERE lower(code) = lower(?) AND account_id = ?', [code, this.acct()])) as
      | Row
      | undefined;
    return r ? toLocation(r) : null;
  }

  private params(l: LocationInput) {
    const a = l.address;
    return {
      code: l.code,
      name: l.name,
      country: a.country,
      house_number: a.houseNumber,
      house_number_suffix: a.houseNumberSuffix ?? null,
      street: a.street,
      street2: a.street2 ?? null,
      city: a.city,
      state: a.state,
      postal_code: a.postalCode,
      plus4: a.plus4 ?? null,
      building: l.building ?? null,
      floor: l.floor ?? null,
      room: l.room ?? null,
      time_zone: l.timeZone,
      ip_groups: JSON.stringify(l.ipGroups),
      switch_ports: JSON.stringify(l.switchPorts),
      admin_emails: JSON.stringify(l.adminEmails),
      sms_numbers: JSON.stringify(l.smsNumbers),
      // A client that does not know the field (an older portal, a CSV row) leaves the stored ones.
      call_numbers: l.callNumbers === undefined ? null : JSON.stringify(l.callNumbers),
      language: l.language,
      now: this.s.iso(),
      account_id: this.acct(),
    };
  }

  async insertLocation(l: LocationInput): Promise<number> {
    const r = await this.s.get<{ id: number }>(
      `INSERT INTO locations (code, name, country, house_number, house_number_suffix, street, street2, city, state, postal_code, plus4,
           building, floor, room, time_zone, ip_groups, switch_ports, admin_emails, sms_numbers, call_numbers, language, created_at, updated_at, account_id)
         VALUES (@code, @name, @country, @house_number, @house_number_suffix, @street, @street2, @city, @state, @postal_code, @plus4,
           @building, @floor, @room, @time_zone, @ip_groups, @switch_ports, @admin_emails, @sms_numbers, coalesce(@call_numbers, '[]'), @language, @now, @now, @account_id)
         RETURNING id`,
      this.params(l),
    );
    return r!.id;
  }

  async updateLocation(id: number, l: LocationInput): Promise<void> {
    await this.s.run(
      `UPDATE locations SET code = @code, name = @name, country = @country, house_number = @house_number,
           house_number_suffix = @house_number_suffix, street = @street, street2 = @street2, city = @city, state = @state,
           postal_code = @postal_code, plus4 = @plus4, building = @building, floor = @floor, room = @room, time_zone = @time_zone,
           ip_groups = @ip_groups, switch_ports = @switch_ports, admin_emails = @admin_emails, sms_numbers = @sms_numbers, language = @language,
           call_numbers = coalesce(@call_numbers, call_numbers), updated_at = @now WHERE id = @id AND account_id = @account_id`,
      { ...this.params(l), id },
    );
  }

  async deleteLocation(id: number): Promise<void> {
    await this.s.run('DELETE FROM locations WHERE id = ? AND account_id = ?', [id, this.acct()]);
  }
}
