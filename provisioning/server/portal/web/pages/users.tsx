// Users: the list (by location, by text), and each user's page with its E911
// tab (location or own address, callback number, display name, preferred language,
// up to 10 notification emails, the notice on their phones) and its General tab
// (user name, extension, phones, the user's own recommendation setting).
// Over 400 lines: the list and the two-tab user form (with the own address and the notice on the
// user's phones) share their form state and helpers; split, each half would import the other.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { RouteProps } from '../route.js';
import { ApiError, issuesByField } from '../api.js';
import type { AccountView, Location, PhoneView, User } from '../types.js';
import { PlaceFields, emptyPlace, placeBody, placeForm, type PlaceForm } from '../place-address.js';
import { NoticeCell } from './phones.js';
import {
  Checkbox,
  ConfirmDelete,
  EmailList,
  ErrorBox,
  Field,
  Page,
  Saved,
  Select,
  Table,
  TextList,
  listErrors,
  useApp,
  useLoad,
} from '../ui.js';
import './users.css';

const LANGUAGES = [
  { value: 'en', label: 'English (en)' },
  { value: 'en-US', label: 'English, US (en-US)' },
  { value: 'en-CA', label: 'English, Canada (en-CA)' },
  { value: 'es', label: 'Spanish (es)' },
  { value: 'es-US', label: 'Spanish, US (es-US)' },
  { value: 'fr', label: 'French (fr)' },
  { value: 'fr-CA', label: 'French, Canada (fr-CA)' },
  { value: 'zh', label: 'Chinese (zh)' },
  { value: 'vi', label: 'Vietnamese (vi)' },
  { value: 'ko', label: 'Korean (ko)' },
  { value: 'tl', label: 'Tagalog (tl)' },
];

export function UsersPage({ params }: RouteProps) {
  const id = params[0];
  if (id === 'new') return <UserForm />;
  if (id !== undefined) return <UserForm id={Number(id)} />;
  return <UserList />;
}

function UserList() {
  const { api, live } = useApp();
  const [locationId, setLocationId] = useState('');
  const [filter, setFilter] = useState('');
  const locations = useLoad(() => api.get<Location[]>('/api/locations'));
  const users = useLoad(
    () => api.get<{ total: number; users: User[] }>(`/api/users?limit=1000${locationId ? `&locationId=${locationId}` : ''}`),
    [locationId],
  );
  useEffect(() => live.on('change', (c) => c.entity === 'user' && users.reload()), [live]);
  const codeOf = new Map((locations.data ?? []).map((l) => [l.id, l.code]));
  const q = filter.trim().toLowerCase();
  const shown = (users.data?.users ?? []).filter(
    (u) =>
      !q ||
      [u.username, u.displayName, u.extension ?? '', u.callback ?? '', ...u.emails, ...u.deviceIds].some((s) =>
        s.toLowerCase().includes(q),
      ),
  );
  return (
    <Page
      title="Users"
      actions={
        <a class="button" href="#/users/new">
          New user
        </a>
      }
    >
      <ErrorBox error={users.error ?? locations.error} title="Could not load" />
      <div class="filters">
        <Select
          label="Location"
          value={locationId}
          onChange={setLocationId}
          options={[
            { value: '', label: 'All locations' },
            ...(locations.data ?? []).map((l) => ({ value: String(l.id), label: `${l.code}: ${l.name}` })),
          ]}
        />
        <Field label="Find" type="search" value={filter} onInput={setFilter} hint="Name, extension, callback, email or phone." />
      </div>
      {users.data ? (
        <p class="muted" role="status">
          {shown.length} of {users.data.total} users
          {users.data.total > users.data.users.length ? ` (the first ${users.data.users.length} are listed: narrow by location)` : ''}
        </p>
      ) : null}
      {shown.length ? (
        <Table
          class="users"
          caption="Users"
          headers={['User', 'Display name', 'Extension', 'Location', 'Callback', 'Notification emails', 'Phones']}
        >
          {shown.map((u) => (
            <tr key={u.id} data-username={u.username}>
              <td>
                <a href={`#/users/${u.id}`}>{u.username}</a>
              </td>
              <td>{u.displayName}</td>
              <td>{u.extension ?? '—'}</td>
              <td>
                {u.locationId !== null ? (
                  (codeOf.get(u.locationId) ?? u.locationId)
                ) : u.ownAddress ? (
                  'own address'
                ) : (
                  <span class="warn">none</span>
                )}
              </td>
              <td>{u.callback ?? <span class={u.deviceIds.length ? 'warn' : 'muted'}>none</span>}</td>
              <td>{u.emails.length}</td>
              <td>{u.deviceIds.join(', ') || '—'}</td>
            </tr>
          ))}
        </Table>
      ) : null}
    </Page>
  );
}

interface Form {
  username: string;
  displayName: string;
  extension: string;
  /** A location id, 'own' (the user's own address), or '' (none: the company default address). */
  locationId: string;
  own: PlaceForm;
  callback: string;
  language: string;
  mobile: string;
  recommendations: boolean;
  emails: string[];
  deviceIds: string[];
}

const EMPTY: Form = {
  username: '',
  displayName: '',
  extension: '',
  locationId: '',
  own: emptyPlace(),
  callback: '',
  language: '',
  mobile: '',
  recommendations: false,
  emails: [],
  deviceIds: [],
};

const fromUser = (u: User): Form => ({
  username: u.username,
  displayName: u.displayName,
  extension: u.extension ?? '',
  locationId: u.locationId !== null ? String(u.locationId) : u.ownAddress ? 'own' : '',
  own: placeForm(u.ownAddress),
  callback: u.callback ?? '',
  language: u.language,
  mobile: u.mobile ?? '',
  recommendations: u.recommendations,
  emails: [...u.emails],
  deviceIds: [...u.deviceIds],
});

const toBody = (f: Form) => ({
  username: f.username.trim(),
  displayName: f.displayName.trim(),
  extension: f.extension.trim() || null,
  locationId: f.locationId && f.locationId !== 'own' ? Number(f.locationId) : null,
  ownAddress: f.locationId === 'own' ? placeBody(f.own) : null,
  callback: f.callback.trim() || null,
  // Left out on a new user who picked none: the server takes the company's language.
  ...(f.language ? { language: f.language } : {}),
  mobile: f.mobile.trim() || null,
  recommendations: f.recommendations,
  emails: f.emails.map((e) => e.trim()).filter(Boolean),
  deviceIds: f.deviceIds.map((d) => d.trim()).filter(Boolean),
});

const TABS = [
  { id: 'e911', label: 'E911' },
  { id: 'general', label: 'General' },
] as const;
type Tab = (typeof TABS)[number]['id'];
const E911_FIELDS = ['locationId', 'ownAddress', 'callback', 'displayName', 'language', 'mobile', 'emails'];

function UserForm({ id }: { id?: number }) {
  const { api, navigate } = useApp();
  const editing = id !== undefined;
  const locations = useLoad(() => api.get<Location[]>('/api/locations'));
  const account = useLoad(() => api.get<AccountView>('/api/account'));
  const phones = useLoad(() => (editing ? api.get<PhoneView[]>('/api/phones') : Promise.resolve([])), [id]);
  const [form, setForm] = useState<Form>(EMPTY);
  const [loaded, setLoaded] = useState<User | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [tab, setTab] = useState<Tab>('e911');
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const tabRefs = useRef<Record<string, HTMLButtonElement | null>>({});

  useEffect(() => {
    if (!editing) return;
    api.get<User>(`/api/users/${id}`).then((u) => {
      setLoaded(u);
      setForm(fromUser(u));
    }, setLoadError);
  }, [id]);

  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));
  const issues = error instanceof ApiError ? error.issues : [];
  const byField = issuesByField(issues);
  const tabHasError = (t: Tab) => issues.some((i) => E911_FIELDS.includes(i.field.split('.')[0]!) === (t === 'e911'));

  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSaved(null);
    try {
      const u = editing ? await api.patch<User>(`/api/users/${id}`, toBody(form)) : await api.post<User>('/api/users', toBody(form));
      setLoaded(u);
      setForm(fromUser(u));
      setSaved(editing ? 'Saved. The user\u2019s phones get the new address.' : `User ${u.username} created.`);
      if (!editing) navigate(`#/users/${u.id}`);
    } catch (err) {
      setError(err);
      // Show the tab where the first problem is.
      const first = err instanceof ApiError ? err.issues[0]?.field.split('.')[0] : undefined;
      if (first) setTab(E911_FIELDS.includes(first) ? 'e911' : 'general');
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    try {
      await api.delete(`/api/users/${id}`);
      navigate('#/users');
    } catch (err) {
      setError(err);
      setConfirmDelete(false);
    }
  };

  // Tabs as the ARIA pattern has them: arrow keys, Home and End move between them.
  const onTabKey = (e: KeyboardEvent) => {
    const i = TABS.findIndex((t) => t.id === tab);
    const next =
      e.key === 'ArrowRight'
        ? (i + 1) % TABS.length
        : e.key === 'ArrowLeft'
          ? (i - 1 + TABS.length) % TABS.length
          : e.key === 'Home'
            ? 0
            : e.key === 'End'
              ? TABS.length - 1
              : -1;
    if (next < 0) return;
    e.preventDefault();
    setTab(TABS[next]!.id);
    tabRefs.current[TABS[next]!.id]?.focus();
  };

  const a = account.data;
  const locationOptions = [
    { value: '', label: a?.defaultAddress ? 'No location: the company default address' : 'No location' },
    { value: 'own', label: 'Own address (works from home)' },
    ...(locations.data ?? []).map((l) => ({ value: String(l.id), label: `${l.code}: ${l.name}` })),
  ];
  const myPhones = (phones.data ?? []).filter((p) => p.userId === id);
  return (
    <Page title={editing ? `User ${loaded?.username ?? ''}` : 'New user'} actions={<a href="#/users">All users</a>}>
      <ErrorBox error={loadError ?? locations.error ?? account.error} title="Could not load" />
      <Saved message={saved} />
      <form onSubmit={save} noValidate>
        <div role="tablist" aria-label="User settings" class="tabs" onKeyDown={onTabKey}>
          {TABS.map((t) => (
            <button
              key={t.id}
              type="button"
              role="tab"
              id={`tab-${t.id}`}
              aria-selected={tab === t.id}
              aria-controls={`panel-${t.id}`}
              tabIndex={tab === t.id ? 0 : -1}
              ref={(el) => {
                tabRefs.current[t.id] = el;
              }}
              class={tabHasError(t.id) ? 'has-error' : ''}
              onClick={() => setTab(t.id)}
            >
              {t.label}
              {tabHasError(t.id) ? (
                <>
                  <span aria-hidden="true"> !</span>
                  <span class="visually-hidden"> (has errors)</span>
                </>
              ) : null}
            </button>
          ))}
        </div>
        {/* biome-ignore lint/a11y/noNoninteractiveTabindex: the ARIA tabs pattern makes a tab panel focusable so the keyboard reaches it from its tab */}
        <div role="tabpanel" id="panel-e911" aria-labelledby="tab-e911" hidden={tab !== 'e911'} tabIndex={0}>
          <p class="hint">What a 911 call from this user's phones carries, and who is told.</p>
          <div class="grid">
            <Select
              label="Location"
              value={form.locationId}
              onChange={(v) => set('locationId', v)}
              options={locationOptions}
              error={byField.locationId ?? byField.ownAddress}
              hint="The dispatchable address the user's phones send: a location's, the user's own (checked by the same rules), or, with none, the company default."
            />
            <Field
              label="Callback number"
              type="tel"
              value={form.callback}
              onInput={(v) => set('callback', v)}
              error={byField.callback}
              hint={`E.164, such as +14085550100: where the PSAP calls back.${a?.defaultCallback ? ` Empty: the company's ${a.defaultCallback.number} (${a.defaultCallback.displayName}).` : ''}`}
            />
            <Field
              label="Display name"
              value={form.displayName}
              onInput={(v) => set('displayName', v)}
              error={byField.displayName}
              required
              maxLength={64}
              hint="Shown to the PSAP and in notices: letters and digits."
            />
            <Select
              label="Preferred language"
              value={form.language}
              onChange={(v) => set('language', v)}
              options={[
                ...(editing ? [] : [{ value: '', label: `Company default (${a?.defaultCallback?.language ?? 'en'})` }]),
                ...(LANGUAGES.some((l) => l.value === form.language) || !form.language
                  ? LANGUAGES
                  : [...LANGUAGES, { value: form.language, label: form.language }]),
              ]}
              error={byField.language}
              hint="Told to the PSAP with every emergency call (so it can bring in an interpreter) and named in notices."
            />
            <Field
              label="Mobile number"
              type="tel"
              value={form.mobile}
              onInput={(v) => set('mobile', v)}
              error={byField.mobile}
              hint="E.164, optional: texted this location's 911 alerts when the notification policy includes SMS."
            />
          </div>
          {form.locationId === 'own' ? (
            <PlaceFields
              legend="Own address"
              hint="Where this user works from home: their phone sends it with every 911 call."
              value={form.own}
              onChange={(v) => set('own', v)}
              errors={byField}
              prefix="ownAddress"
            />
          ) : null}
          <EmailList
            legend="Notification emails"
            hint={`Emailed when this user calls 911 or 933, besides the location's admins.${a?.emergencyContacts.length ? ` Empty: the company's ${a.emergencyContacts.length} emergency contacts.` : ''}`}
            emails={form.emails}
            onChange={(v) => set('emails', v)}
            errors={listErrors(byField, 'emails')}
          />
          {byField.emails ? <p class="error">{byField.emails}</p> : null}
          {myPhones.length ? (
            <Table class="user-notice" showCaption caption="Emergency-services notice on this user's phones" headers={['Phone', 'Notice']}>
              {myPhones.map((p) => (
                <tr key={p.deviceId}>
                  <td>{p.deviceId}</td>
                  <td>
                    <NoticeCell notice={p.notice} />
                  </td>
                </tr>
              ))}
            </Table>
          ) : null}
        </div>
        {/* biome-ignore lint/a11y/noNoninteractiveTabindex: the ARIA tabs pattern makes a tab panel focusable so the keyboard reaches it from its tab */}
        <div role="tabpanel" id="panel-general" aria-labelledby="tab-general" hidden={tab !== 'general'} tabIndex={0}>
          <div class="grid">
            <Field
              label="User name"
              value={form.username}
              onInput={(v) => set('username', v)}
              error={byField.username}
              required
              maxLength={64}
              autoComplete="off"
            />
            <Field label="Extension" value={form.extension} onInput={(v) => set('extension', v)} error={byField.extension} maxLength={16} />
          </div>
          <TextList
            class="devices"
            legend="Phones"
            hint="Device ids of the user's phones (as each agent is configured)."
            item="Phone"
            action="phone"
            values={form.deviceIds}
            onChange={(v) => set('deviceIds', v)}
            errors={listErrors(byField, 'deviceIds')}
            max={16}
          />
          <Checkbox
            label="Location recommendations for this user"
            checked={form.recommendations}
            onChange={(v) => set('recommendations', v)}
            hint="Applies while the account's own recommendation setting is off."
          />
        </div>
        <ErrorBox error={error} />
        <div class="actions">
          <button type="submit" disabled={busy}>
            {editing ? 'Save user' : 'Create user'}
          </button>
          {editing ? (
            <ConfirmDelete
              label="Delete user…"
              question={<>Delete {loaded?.username}? Their phones lose their address.</>}
              confirming={confirmDelete}
              setConfirming={setConfirmDelete}
              onDelete={() => void remove()}
            />
          ) : null}
        </div>
      </form>
    </Page>
  );
}
