// An address that is not a location record: the company's default address (Account) and a
// user's own address for working from home (Users). The server checks it with the same
// rules as a location's address; its reasons come back by field under `prefix`.
import type { PlaceAddress, PostalAddress } from './types.js';
import { CA_PROVINCES, US_STATES } from '../../../protocol/regions.js';
import { Field, Select } from './ui.js';

export interface PlaceForm {
  country: string;
  houseNumber: string;
  houseNumberSuffix: string;
  street: string;
  street2: string;
  city: string;
  state: string;
  postalCode: string;
  plus4: string;
  building: string;
  floor: string;
  room: string;
  timeZone: string;
}

export const emptyPlace = (timeZone = ''): PlaceForm => ({
  country: 'US',
  houseNumber: '',
  houseNumberSuffix: '',
  street: '',
  street2: '',
  city: '',
  state: '',
  postalCode: '',
  plus4: '',
  building: '',
  floor: '',
  room: '',
  timeZone,
});

/** A place as the API gives it: a user's or the company's address, or a location's own fields. */
type PlaceLike = Pick<PlaceAddress, 'timeZone'> & {
  address: PostalAddress;
  building?: string | null;
  floor?: string | null;
  room?: string | null;
};

export function placeForm(p: PlaceLike | null): PlaceForm {
  if (!p) return emptyPlace();
  const a = p.address;
  return {
    country: a.country,
    houseNumber: a.houseNumber,
    houseNumberSuffix: a.houseNumberSuffix ?? '',
    street: a.street,
    street2: a.street2 ?? '',
    city: a.city,
    state: a.state,
    postalCode: a.postalCode,
    plus4: a.plus4 ?? '',
    building: p.building ?? '',
    floor: p.floor ?? '',
    room: p.room ?? '',
    timeZone: p.timeZone,
  };
}

export function placeBody(f: PlaceForm): Record<string, unknown> {
  const opt = (s: string) => (s.trim() === '' ? undefined : s.trim());
  return {
    address: {
      country: f.country,
      houseNumber: f.houseNumber.trim(),
      houseNumberSuffix: opt(f.houseNumberSuffix),
      street: f.street.trim(),
      street2: opt(f.street2),
      city: f.city.trim(),
      state: f.state.trim().toUpperCase(),
      postalCode: f.postalCode.trim(),
      plus4: f.country === 'US' ? opt(f.plus4) : undefined,
    },
    building: opt(f.building),
    floor: opt(f.floor),
    room: opt(f.room),
    timeZone: f.timeZone.trim(),
  };
}

/** One line: "100 Main St, San Jose, CA 95110, US". */
export function placeLine(p: PlaceAddress): string {
  const a = p.address;
  const street = [a.houseNumber, a.houseNumberSuffix, a.street].filter(Boolean).join(' ');
  const zip = a.plus4 ? `${a.postalCode}-${a.plus4}` : a.postalCode;
  return [street, a.street2, `${a.city}, ${a.state} ${zip}`, a.country].filter(Boolean).join(', ');
}

export function PlaceFields(p: {
  legend: string;
  value: PlaceForm;
  onChange: (f: PlaceForm) => void;
  /** Server issues by field; this form's are under `${prefix}.`. */
  errors: Record<string, string>;
  prefix: string;
  hint?: string;
}) {
  const f = p.value;
  const err = (field: string) => p.errors[`${p.prefix}.${field}`];
  const text = (key: keyof PlaceForm, label: string, field: string, o: { required?: boolean; maxLength?: number; hint?: string } = {}) => (
    <Field
      label={label}
      value={f[key]}
      onInput={(v) => p.onChange({ ...f, [key]: v })}
      required={o.required}
      maxLength={o.maxLength}
      hint={o.hint}
      error={err(field)}
    />
  );
  const regions = f.country === 'CA' ? CA_PROVINCES : US_STATES;
  return (
    <fieldset>
      <legend>{p.legend}</legend>
      {p.hint ? <p class="hint">{p.hint}</p> : null}
      <div class="grid">
        <Select
          label="Country"
          value={f.country}
          onChange={(v) => p.onChange({ ...f, country: v, plus4: v === 'US' ? f.plus4 : '' })}
          options={[
            { value: 'US', label: 'United States' },
            { value: 'CA', label: 'Canada' },
          ]}
          error={err('address.country')}
        />
        {text('houseNumber', 'House number', 'address.houseNumber', { required: true, maxLength: 16 })}
        {text('houseNumberSuffix', 'House number suffix', 'address.houseNumberSuffix', { maxLength: 16 })}
        {text('street', 'Street', 'address.street', { required: true, maxLength: 128, hint: 'With its type: Main St, 5th Ave NE.' })}
        {text('street2', 'Street 2', 'address.street2', { maxLength: 128, hint: 'Apartment, suite or unit.' })}
        {text('city', 'City', 'address.city', { required: true, maxLength: 64 })}
        {text('state', f.country === 'CA' ? 'Province or territory' : 'State', 'address.state', {
          required: true,
          maxLength: 2,
          hint: `Two letters, such as ${[...regions].slice(0, 3).join(', ')}.`,
        })}
        {text('postalCode', f.country === 'CA' ? 'Postal code' : 'ZIP code', 'address.postalCode', {
          required: true,
          maxLength: 10,
          hint: f.country === 'CA' ? 'Such as M5H 3T4.' : 'Five digits.',
        })}
        {f.country === 'US' ? text('plus4', 'ZIP plus-4', 'address.plus4', { maxLength: 4 }) : null}
        {text('building', 'Building', 'building', { maxLength: 64 })}
        {text('floor', 'Floor', 'floor', { maxLength: 32 })}
        {text('room', 'Room', 'room', { maxLength: 32 })}
        {text('timeZone', 'Time zone', 'timeZone', {
          required: true,
          hint: 'IANA name, such as America/Chicago: notices give the time here.',
        })}
      </div>
    </fieldset>
  );
}
