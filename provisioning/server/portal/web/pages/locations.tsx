// Locations: the list, and the form with the server's own address rules
// checked as the administrator types (POST /api/locations/validate), before
// anything is saved. Building, floor, room, location code, IP groups, switch
// ports, the location's admins and SMS numbers.
// Over 400 lines: the list, the civic address form with its checks per field, and the
// IP groups and switch ports of a location, on one page as admins expect them.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { RouteProps } from '../route.js';
import { ApiError, issuesByField, type FieldIssue } from '../api.js';
import type { Location } from '../types.js';
import { emptyPlace, placeBody, placeForm, type PlaceForm } from '../place-address.js';
import { US_STATES, CA_PROVINCES } from '../../../../protocol/regions.js';
import { ConfirmDelete, EmailList, ErrorBox, Field, Page, Saved, Select, Table, TextList, listErrors, useApp, useLoad } from '../ui.js';
import './locations.css';

type LocationRow = Location & { userCount: number };

const TIME_ZONES = [
  'America/New_York',
  'America/Chicago',
  'America/Denver',
  'America/Phoenix',
  'America/Los_Angeles',
  'America/Anchorage',
  'Pacific/Honolulu',
  'America/Puerto_Rico',
  'America/Toronto',
  'America/Vancouver',
  'America/Edmonton',
  'America/Winnipeg',
  'America/Regina',
  'America/Halifax',
  'America/St_Johns',
];

export function addressLine(l: Pick<Location, 'address'>): string {
  const a = l.address;
  const street = [a.houseNumber, a.houseNumberSuffix, a.street].filter(Boolean).join(' ');
  const zip = a.plus4 ? `${a.postalCode}-${a.plus4}` : a.postalCode;
  return [street, a.street2, `${a.city}, ${a.state} ${zip}`, a.country].filter(Boolean).join(', ');
}

export function LocationsPage({ params }: RouteProps) {
  const id = params[0];
  if (id === 'new') return <LocationForm />;
  if (id !== undefined) return <LocationForm id={Number(id)} />;
  return <LocationList />;
}

function LocationList() {
  const { api, live } = useApp();
  const list = useLoad(() => api.get<LocationRow[]>('/api/locations'));
  useEffect(() => live.on('change', (c) => (c.entity === 'location' || c.entity === 'user') && list.reload()), [live]);
  return (
    <Page
      title="Locations"
      actions={
        <a class="button" href="#/locations/new">
          New location
        </a>
      }
    >
      <ErrorBox error={list.error} title="Could not load" />
      {list.data && list.data.length === 0 ? (
        <p class="muted">No locations yet. Every user with a phone needs one before E911 can be enabled.</p>
      ) : null}
      {list.data?.length ? (
        <Table class="locations" caption="Locations" headers={['Code', 'Name', 'Dispatchable address', 'Building, floor, room', 'Users']}>
          {list.data.map((l) => (
            <tr key={l.id} data-location-code={l.code}>
              <td>
                <a href={`#/locations/${l.id}`}>{l.code}</a>
              </td>
              <td>{l.name}</td>
              <td>{addressLine(l)}</td>
              <td>
                {[l.building && `Bldg ${l.building}`, l.floor && `Floor ${l.floor}`, l.room && `Room ${l.room}`]
                  .filter(Boolean)
                  .join(', ') || '—'}
              </td>
              <td>{l.userCount}</td>
            </tr>
          ))}
        </Table>
      ) : null}
    </Page>
  );
}

/** The civic address and time zone are a place's, as on the account and user pages (place-address.tsx). */
interface Form extends PlaceForm {
  code: string;
  name: string;
  ipGroups: { name: string; cidrs: string[] }[];
  switchPorts: { chassisId: string; portId: string }[];
  adminEmails: string[];
  smsNumbers: string[];
  callNumbers: string[];
  language: string;
}

/** The languages notices are written in (the server's catalogue); others get English. */
const NOTICE_LANGUAGES = [
  { value: 'en', label: 'English' },
  { value: 'es', label: 'Spanish (español)' },
  { value: 'fr', label: 'French (français)' },
];

const EMPTY: Form = {
  ...emptyPlace('America/New_York'),
  code: '',
  name: '',
  ipGroups: [],
  switchPorts: [],
  adminEmails: [],
  smsNumbers: [],
  callNumbers: [],
  language: 'en',
};

function fromLocation(l: Location): Form {
  return {
    ...placeForm({ address: l.address, building: l.building, floor: l.floor, room: l.room, timeZone: l.timeZone }),
    code: l.code,
    name: l.name,
    ipGroups: l.ipGroups.map((g) => ({ name: g.name, cidrs: [...g.cidrs] })),
    switchPorts: l.switchPorts.map((p) => ({ chassisId: p.chassisId, portId: p.portId ?? '' })),
    adminEmails: [...l.adminEmails],
    smsNumbers: [...l.smsNumbers],
    callNumbers: [...(l.callNumbers ?? [])],
    language: l.language,
  };
}

/** The API's body: blank optional fields left out, blank list entries dropped. */
function toBody(f: Form): Record<string, unknown> {
  const opt = (v: string) => (v.trim() ? v.trim() : undefined);
  return {
    code: f.code.trim(),
    name: f.name.trim(),
    ...placeBody(f),
    ipGroups: f.ipGroups.map((g) => ({ name: g.name.trim(), cidrs: g.cidrs.map((c) => c.trim()).filter(Boolean) })),
    switchPorts: f.switchPorts.filter((p) => p.chassisId.trim()).map((p) => ({ chassisId: p.chassisId.trim(), portId: opt(p.portId) })),
    adminEmails: f.adminEmails.map((e) => e.trim()).filter(Boolean),
    smsNumbers: f.smsNumbers.map((n) => n.trim()).filter(Boolean),
    callNumbers: f.callNumbers.map((n) => n.trim()).filter(Boolean),
    language: f.language,
  };
}

function LocationForm({ id }: { id?: number }) {
  const { api, navigate } = useApp();
  const editing = id !== undefined;
  const [form, setForm] = useState<Form>(EMPTY);
  const [loaded, setLoaded] = useState<LocationRow | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [issues, setIssues] = useState<FieldIssue[]>([]);
  const [touched, setTouched] = useState<Set<string>>(new Set());
  const [showAll, setShowAll] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const check = useRef(0);

  useEffect(() => {
    if (!editing) return;
    api.get<LocationRow>(`/api/locations/${id}`).then((l) => {
      setLoaded(l);
      setForm(fromLocation(l));
    }, setLoadError);
  }, [id]);

  // The server's rules, as the administrator types: a short pause, then one check; a late answer is dropped.
  useEffect(() => {
    if (editing && !loaded) return;
    const mine = ++check.current;
    const timer = setTimeout(() => {
      api.post<{ ok: boolean; issues: FieldIssue[] }>('/api/locations/validate', toBody(form)).then(
        (r) => mine === check.current && setIssues(r.issues),
        (e: Error) => console.warn(`location check: ${e.message}`),
      );
    }, 300);
    return () => clearTimeout(timer);
  }, [form, loaded]);

  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));
  const touch = (k: string) => setTouched((t) => (t.has(k) ? t : new Set(t).add(k)));
  const all = issuesByField(issues);
  // A field's error shows once it was left, or after a save was tried: not while a new form is still blank.
  const err = (k: string) => (showAll || touched.has(k) ? all[k] : undefined);
  const text = (k: keyof Form, label: string, key: string, extra: Partial<Parameters<typeof Field>[0]> = {}) => (
    <Field
      label={label}
      value={form[k] as string}
      onInput={(v) => set(k, v as never)}
      onBlur={() => touch(key)}
      error={err(key)}
      {...extra}
    />
  );

  const save = async (e: Event) => {
    e.preventDefault();
    setShowAll(true);
    setSaveError(null);
    setSaved(null);
    setBusy(true);
    try {
      const body = toBody(form);
      // The same check the server makes on save, so the reasons land beside their fields.
      const r = await api.post<{ ok: boolean; issues: FieldIssue[] }>('/api/locations/validate', body);
      setIssues(r.issues);
      if (!r.ok)
        throw new ApiError(400, 'invalid', `${r.issues.length} ${r.issues.length === 1 ? 'field needs' : 'fields need'} fixing`, r.issues);
      const l = editing ? await api.patch<Location>(`/api/locations/${id}`, body) : await api.post<Location>('/api/locations', body);
      setSaved(editing ? 'Location saved. Its phones get the new address.' : `Location ${l.code} created.`);
      if (!editing) navigate(`#/locations/${l.id}`);
      else setLoaded((cur) => (cur ? { ...cur, ...l } : cur));
    } catch (err) {
      if (err instanceof ApiError) setIssues(err.issues);
      setSaveError(err);
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    setSaveError(null);
    try {
      await api.delete(`/api/locations/${id}`);
      navigate('#/locations');
    } catch (err) {
      setSaveError(err);
      setConfirmDelete(false);
    }
  };

  const regions = [...(form.country === 'CA' ? CA_PROVINCES : US_STATES)];
  const adminErrors = listErrors(showAll || touched.has('adminEmails') ? all : {}, 'adminEmails');
  return (
    <Page title={editing ? `Location ${loaded?.code ?? ''}` : 'New location'} actions={<a href="#/locations">All locations</a>}>
      <ErrorBox error={loadError} title="Could not load" />
      <Saved message={saved} />
      <form onSubmit={save} noValidate aria-describedby="loc-intro">
        <p id="loc-intro" class="hint">
          This is the dispatchable address phones send with a 911 call: the street address a responder can find, with the building, floor
          and room. Fields are checked with the phones' own rules as you type.
        </p>
        <fieldset>
          <legend>Location</legend>
          <div class="grid">
            {text('code', 'Location code', 'code', {
              required: true,
              maxLength: 32,
              hint: 'Short and unique, such as SJC-A. Shown on phones and in notices.',
            })}
            {text('name', 'Name', 'name', { required: true, maxLength: 128, hint: 'The site or company name (RFC 5139 NAM).' })}
            {text('timeZone', 'Time zone', 'timeZone', {
              required: true,
              list: 'time-zones',
              hint: 'IANA name; notices give the time here.',
            })}
            <Select
              label="Notice language"
              value={form.language}
              onChange={(v) => set('language', v)}
              options={
                NOTICE_LANGUAGES.some((l) => l.value === form.language)
                  ? NOTICE_LANGUAGES
                  : [...NOTICE_LANGUAGES, { value: form.language, label: form.language }]
              }
              error={err('language')}
              hint="The language of this site's 911 and 933 emails and texts."
            />
          </div>
          <datalist id="time-zones">
            {TIME_ZONES.map((z) => (
              <option key={z} value={z} />
            ))}
          </datalist>
        </fieldset>
        <fieldset>
          <legend>Address</legend>
          <div class="grid">
            <Select
              label="Country"
              value={form.country}
              onChange={(v) => setForm((f) => ({ ...f, country: v, plus4: v === 'US' ? f.plus4 : '' }))}
              options={[
                { value: 'US', label: 'United States' },
                { value: 'CA', label: 'Canada' },
              ]}
              error={err('address.country')}
            />
            {text('houseNumber', 'House number', 'address.houseNumber', { required: true, maxLength: 16 })}
            {text('houseNumberSuffix', 'House number suffix', 'address.houseNumberSuffix', { maxLength: 16, hint: 'Such as A or 1/2.' })}
            {text('street', 'Street', 'address.street', {
              required: true,
              maxLength: 128,
              hint: 'With its type and direction: Main St, 5th Ave NE.',
            })}
            {text('street2', 'Street 2', 'address.street2', { maxLength: 128, hint: 'Suite, unit or other detail.' })}
            {text('city', 'City', 'address.city', { required: true, maxLength: 64 })}
            {text('state', form.country === 'CA' ? 'Province or territory' : 'State', 'address.state', {
              required: true,
              maxLength: 2,
              list: 'regions',
              hint: 'Two letters.',
            })}
            {text('postalCode', form.country === 'CA' ? 'Postal code' : 'ZIP code', 'address.postalCode', {
              required: true,
              maxLength: 10,
              hint: form.country === 'CA' ? 'Such as M5H 3T4.' : 'Five digits.',
            })}
            {form.country === 'US' ? text('plus4', 'ZIP plus-4', 'address.plus4', { maxLength: 4, hint: 'Four digits, optional.' }) : null}
          </div>
          <datalist id="regions">
            {regions.map((r) => (
              <option key={r} value={r} />
            ))}
          </datalist>
        </fieldset>
        <fieldset>
          <legend>Where in the building</legend>
          <div class="grid">
            {text('building', 'Building', 'building', { maxLength: 64 })}
            {text('floor', 'Floor', 'floor', { maxLength: 32 })}
            {text('room', 'Room', 'room', { maxLength: 32 })}
          </div>
        </fieldset>
        <IpGroups
          groups={form.ipGroups}
          onChange={(g) => set('ipGroups', g)}
          errors={showAll || touched.has('ipGroups') ? all : {}}
          onBlur={() => touch('ipGroups')}
        />
        <SwitchPorts ports={form.switchPorts} onChange={(p) => set('switchPorts', p)} errors={showAll ? all : {}} />
        <div onFocusOut={() => touch('adminEmails')}>
          <EmailList
            legend="Location admins"
            hint="Emailed for every 911 and 933 call from this location, besides the caller's own list."
            emails={form.adminEmails}
            onChange={(v) => set('adminEmails', v)}
            errors={adminErrors}
          />
        </div>
        <TextList
          legend="SMS numbers"
          item="SMS number"
          hint="Texted for every 911 call from this location (E.164, such as +14085550199), and so are the mobiles of the people here."
          values={form.smsNumbers}
          onChange={(v) => set('smsNumbers', v)}
          errors={listErrors(showAll || touched.has('smsNumbers') ? all : {}, 'smsNumbers')}
          onBlur={() => touch('smsNumbers')}
          max={10}
          type="tel"
        />
        <TextList
          legend="Security desk numbers"
          item="Desk number"
          hint="Called for every 911 call from this location: a spoken notice repeats until someone presses 1 (E.164 through the SIP gateway, or a SIP URI such as sip:desk@pbx.example)."
          values={form.callNumbers}
          onChange={(v) => set('callNumbers', v)}
          errors={listErrors(showAll || touched.has('callNumbers') ? all : {}, 'callNumbers')}
          onBlur={() => touch('callNumbers')}
          max={10}
        />
        <ErrorBox error={saveError} />
        <div class="actions">
          <button type="submit" disabled={busy}>
            {editing ? 'Save location' : 'Create location'}
          </button>
          {editing && loaded ? (
            <ConfirmDelete
              label="Delete location…"
              question={<>Delete {loaded.code}?</>}
              confirming={confirmDelete}
              setConfirming={setConfirmDelete}
              onDelete={() => void remove()}
              describedBy="delete-hint"
            />
          ) : null}
          {editing && loaded ? (
            <small id="delete-hint" class="hint">
              {loaded.userCount ? `${loaded.userCount} users are here: move them first.` : 'No users are here.'}
            </small>
          ) : null}
        </div>
      </form>
    </Page>
  );
}

function IpGroups({
  groups,
  onChange,
  errors,
  onBlur,
}: {
  groups: Form['ipGroups'];
  onChange: (g: Form['ipGroups']) => void;
  errors: Record<string, string>;
  onBlur: () => void;
}) {
  const setGroup = (i: number, g: Form['ipGroups'][number]) => onChange(groups.map((x, j) => (j === i ? g : x)));
  return (
    <fieldset class="ip-groups" onFocusOut={onBlur}>
      <legend>IP groups</legend>
      <p class="hint">
        The networks of this location (IPv4 or IPv6 CIDRs, host bits zero). A phone on one of them is here: the server notices a phone that
        moved.
      </p>
      {groups.map((g, i) => (
        <fieldset key={i} class="ip-group">
          <legend>{`IP group ${i + 1}${g.name ? `: ${g.name}` : ''}`}</legend>
          <Field
            label="Group name"
            value={g.name}
            onInput={(v) => setGroup(i, { ...g, name: v })}
            error={errors[`ipGroups.${i}.name`]}
            maxLength={64}
          />
          <TextList
            legend="CIDRs"
            item={`Group ${i + 1} CIDR`}
            values={g.cidrs}
            onChange={(cidrs) => setGroup(i, { ...g, cidrs })}
            errors={listErrors(errors, `ipGroups.${i}.cidrs`)}
            max={64}
            placeholder="10.1.0.0/16"
          />
          {errors[`ipGroups.${i}.cidrs`] ? <small class="error">{errors[`ipGroups.${i}.cidrs`]}</small> : null}
          <button type="button" class="secondary" onClick={() => onChange(groups.filter((_, j) => j !== i))}>
            Remove IP group {i + 1}
          </button>
        </fieldset>
      ))}
      <button type="button" class="secondary" onClick={() => onChange([...groups, { name: '', cidrs: [''] }])}>
        Add IP group
      </button>
    </fieldset>
  );
}

function SwitchPorts({
  ports,
  onChange,
  errors,
}: {
  ports: Form['switchPorts'];
  onChange: (p: Form['switchPorts']) => void;
  errors: Record<string, string>;
}) {
  const setPort = (i: number, p: Form['switchPorts'][number]) => onChange(ports.map((x, j) => (j === i ? p : x)));
  return (
    <fieldset class="switch-ports">
      <legend>Switch ports</legend>
      <p class="hint">LLDP chassis id (and port id, or any port): a phone plugged in there is here.</p>
      {ports.map((p, i) => (
        <div key={i} class="row">
          <Field
            label={`Chassis id ${i + 1}`}
            value={p.chassisId}
            onInput={(v) => setPort(i, { ...p, chassisId: v })}
            error={errors[`switchPorts.${i}.chassisId`]}
            maxLength={64}
          />
          <Field
            label={`Port id ${i + 1}`}
            value={p.portId}
            onInput={(v) => setPort(i, { ...p, portId: v })}
            error={errors[`switchPorts.${i}.portId`]}
            maxLength={64}
          />
          <button
            type="button"
            class="icon"
            aria-label={`Remove switch port ${i + 1}`}
            onClick={() => onChange(ports.filter((_, j) => j !== i))}
          >
            −
          </button>
        </div>
      ))}
      <button type="button" class="secondary" onClick={() => onChange([...ports, { chassisId: '', portId: '' }])}>
        Add switch port
      </button>
    </fieldset>
  );
}

/** A list of one-line values with + and −; errors by index. */
