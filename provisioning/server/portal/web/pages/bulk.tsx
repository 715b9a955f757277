// Bulk update: one list of notification emails (left) set on many users
// (right: all users, one location's users, or users picked by hand). It
// REPLACES each user's list, so the page says how many users it touches before
// and in the confirm step. The server runs it as a job; its progress is live.
// "All users" says plainly that users created later do not get the list, and
// offers to make it the company emergency contacts, which do cover them.
// Over 400 lines: the list, the three ways of choosing users and the confirm step share
// one form's state; the user picker alone is a component below.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { RouteProps } from '../route.js';
import { ApiError, issuesByField } from '../api.js';
import type { Job, Location, User } from '../types.js';
import { Checkbox, EmailList, ErrorBox, Field, JobProgress, listErrors, Page, Select, useApp, useJob, useLoad } from '../ui.js';
import './bulk.css';

type Mode = 'all' | 'location' | 'users';
type Target = { all: true } | { locationId: number } | { userIds: number[] };
type UserPage = { total: number; users: User[] };

/** How many users a list shows; beyond that the page says the list is cut. */
const USER_LIMIT = 1000;

const MODES: { value: Mode; label: string }[] = [
  { value: 'all', label: 'All users' },
  { value: 'location', label: 'Users at a location' },
  { value: 'users', label: 'Selected users' },
];

export function BulkPage(_: RouteProps) {
  const { api } = useApp();
  const locations = useLoad(() => api.get<(Location & { userCount: number })[]>('/api/locations'));
  const everyone = useLoad(() => api.get<UserPage>(`/api/users?limit=${USER_LIMIT}`));

  const [emails, setEmails] = useState<string[]>(['']);
  const [emailErrors, setEmailErrors] = useState<Record<number, string>>({});
  const [mode, setMode] = useState<Mode>('location');
  const [locationId, setLocationId] = useState('');
  const [atLocation, setAtLocation] = useState<UserPage | null>(null);
  const [locationError, setLocationError] = useState<unknown>(null);
  const [locationPicked, setLocationPicked] = useState<Set<number>>(new Set());
  const [picked, setPicked] = useState<Set<number>>(new Set());
  const [filter, setFilter] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [sending, setSending] = useState(false);
  const [companyToo, setCompanyToo] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [queued, setQueued] = useState<Job | null>(null);
  const job = useJob(queued);

  // Choosing a location selects all of its users; the admin sees them and may untick some.
  const loadLocation = (id: string) => {
    setLocationError(null);
    if (!id) {
      setAtLocation(null);
      setLocationPicked(new Set());
      return;
    }
    api.get<UserPage>(`/api/users?locationId=${encodeURIComponent(id)}&limit=${USER_LIMIT}`).then(
      (p) => {
        setAtLocation(p);
        setLocationPicked(new Set(p.users.map((u) => u.id)));
      },
      (e: unknown) => {
        setAtLocation(null);
        setLocationError(e);
      },
    );
  };
  useEffect(() => {
    loadLocation(locationId);
  }, [locationId]);

  // After a job, show the users' new lists.
  useEffect(() => {
    if (job?.status !== 'done') return;
    everyone.reload();
    if (locationId && atLocation) {
      api
        .get<UserPage>(`/api/users?locationId=${encodeURIComponent(locationId)}&limit=${USER_LIMIT}`)
        .then(setAtLocation, setLocationError);
    }
  }, [job?.status]);

  const target = useMemo((): { target: Target | null; count: number; why?: string } => {
    if (mode === 'all')
      return everyone.data ? { target: { all: true }, count: everyone.data.total } : { target: null, count: 0, why: 'Loading the users…' };
    if (mode === 'location') {
      if (!locationId || !atLocation) return { target: null, count: 0, why: 'Choose a location.' };
      const all = atLocation.users.length === atLocation.total && atLocation.users.every((u) => locationPicked.has(u.id));
      // All ticked: the location itself, resolved when the job runs. Some unticked: exactly the ticked ones.
      if (all)
        return atLocation.total
          ? { target: { locationId: Number(locationId) }, count: atLocation.total }
          : { target: null, count: 0, why: 'This location has no users.' };
      const ids = atLocation.users.filter((u) => locationPicked.has(u.id)).map((u) => u.id);
      return ids.length ? { target: { userIds: ids }, count: ids.length } : { target: null, count: 0, why: 'Tick at least one user.' };
    }
    const ids = [...picked];
    return ids.length ? { target: { userIds: ids }, count: ids.length } : { target: null, count: 0, why: 'Tick at least one user.' };
  }, [mode, everyone.data, locationId, atLocation, locationPicked, picked]);

  const filled = emails.map((e, i) => [e.trim(), i] as const).filter(([e]) => e !== '');
  const running = job !== null && (job.status === 'queued' || job.status === 'running');
  const users = target.count === 1 ? '1 user' : `${target.count} users`;

  /** The browser's own email check first (the server's rule is stricter: it has the last word). */
  const precheck = (): boolean => {
    const errs: Record<number, string> = {};
    const probe = document.createElement('input');
    probe.type = 'email';
    const seen = new Map<string, number>();
    for (const [e, i] of filled) {
      probe.value = e;
      if (!probe.checkValidity() || !e.includes('@')) errs[i] = `${JSON.stringify(e)} is not a valid email address`;
      const first = seen.get(e.toLowerCase());
      if (first !== undefined) errs[i] = `${e} is listed twice (email ${first + 1})`;
      else seen.set(e.toLowerCase(), i);
    }
    setEmailErrors(errs);
    return Object.keys(errs).length === 0;
  };

  const submit = async () => {
    if (!target.target) return;
    setSending(true);
    setError(null);
    try {
      const j = await api.post<Job>('/api/bulk/emails', {
        emails: filled.map(([e]) => e),
        target: target.target,
        ...(mode === 'all' && companyToo ? { alsoCompanyContacts: true } : {}),
      });
      setConfirming(false);
      setQueued(j);
    } catch (e) {
      setConfirming(false);
      // "emails.1" is the second address sent: map it back to its input (empty inputs are not sent).
      const byField = e instanceof ApiError ? issuesByField(e.issues) : {};
      const sent = listErrors(byField, 'emails');
      const mapped: Record<number, string> = {};
      for (const [k, v] of Object.entries(sent)) {
        const input = filled[Number(k)];
        if (input) mapped[input[1]] = v;
      }
      setEmailErrors(mapped);
      setError(e);
    } finally {
      setSending(false);
    }
  };

  const listSummary = filled.length === 0 ? 'no addresses: their current addresses are removed' : filled.map(([e]) => e).join(', ');

  return (
    <Page title="Bulk update">
      <p>
        Set one list of notification emails on many users at once: the addresses that get a message when one of them calls 911. To change
        users one by one, use <a href="#/users">Users</a>; to change many with different lists, use <a href="#/csv">CSV</a>.
      </p>
      <ErrorBox error={locations.error ?? everyone.error ?? locationError} title="Could not load" />
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setError(null);
          if (target.target && precheck()) setConfirming(true);
        }}
      >
        <div class="two-halves bulk">
          <div>
            <EmailList
              legend="Notification emails (up to 10)"
              hint="These addresses replace each selected user's list. Leave them all empty to remove every user's addresses."
              emails={emails}
              onChange={(v) => {
                setEmails(v);
                setEmailErrors({});
              }}
              errors={emailErrors}
            />
          </div>
          <div>
            <fieldset>
              <legend>Apply to</legend>
              {MODES.map((m) => (
                <div class="check" key={m.value}>
                  <input
                    type="radio"
                    name="bulk-mode"
                    id={`bulk-mode-${m.value}`}
                    value={m.value}
                    checked={mode === m.value}
                    onChange={() => setMode(m.value)}
                  />
                  <label for={`bulk-mode-${m.value}`}>{m.label}</label>
                </div>
              ))}
            </fieldset>
            {mode === 'all' ? (
              <>
                <p>{everyone.data ? `Every user: ${users} now, and whoever is a user when the job runs.` : 'Loading the users…'}</p>
                <p class="notice warning" id="bulk-later">
                  Users created after the job has run do <strong>not</strong> get this list.
                </p>
                <Checkbox
                  label="Also make this list the company emergency contacts"
                  checked={companyToo}
                  onChange={setCompanyToo}
                  hint="Then users created later, and any user whose list is empty, are covered too: the company contacts apply to every user without notification emails of their own."
                />
              </>
            ) : null}
            {mode === 'location' ? (
              <>
                <Select
                  label="Location"
                  value={locationId}
                  onChange={setLocationId}
                  options={[
                    { value: '', label: 'Choose a location…' },
                    ...(locations.data ?? []).map((l) => ({ value: String(l.id), label: `${l.name} (${l.code}): ${l.userCount} users` })),
                  ]}
                />
                {atLocation ? (
                  <UserPicks
                    legend="Users at this location"
                    users={atLocation.users}
                    total={atLocation.total}
                    picked={locationPicked}
                    onChange={setLocationPicked}
                    empty="No users at this location."
                  />
                ) : null}
              </>
            ) : null}
            {mode === 'users' && everyone.data ? (
              <>
                <Field label="Filter users" value={filter} onInput={setFilter} type="search" hint="Name, username, extension or email" />
                <UserPicks
                  legend="Users"
                  users={everyone.data.users}
                  total={everyone.data.total}
                  picked={picked}
                  onChange={setPicked}
                  filter={filter}
                  empty="No users yet."
                />
              </>
            ) : null}
          </div>
        </div>
        <div class="notice warning bulk-warning">
          <strong>Replaces, does not add.</strong>{' '}
          {target.target ? (
            <>
              Update replaces the notification list of <strong>{users}</strong> with the{' '}
              {filled.length === 1 ? 'address' : `${filled.length} addresses`} on the left; their current addresses are removed.
            </>
          ) : (
            <>Update replaces each selected user's notification list with the list on the left. {target.why}</>
          )}
        </div>
        <ErrorBox error={error} title="Not queued" />
        <div class="actions">
          <button type="submit" disabled={!target.target || running || sending}>
            Update
          </button>
          {running ? <span class="muted">A bulk update is running…</span> : null}
        </div>
      </form>
      <Confirm
        open={confirming}
        title={`Replace the notification lists of ${users}?`}
        confirmLabel={`Replace ${target.count === 1 ? '1 list' : `${target.count} lists`}`}
        busy={sending}
        onCancel={() => setConfirming(false)}
        onConfirm={submit}
      >
        <p>
          Each of the {users}' notification emails will be <strong>replaced</strong> by: {listSummary}. Addresses not in this list are
          removed from their lists.
        </p>
        {mode === 'all' ? (
          <p>
            This is every user of the account.{' '}
            {companyToo
              ? 'The list also becomes the company emergency contacts, for users created later.'
              : 'Users created later do not get it.'}
          </p>
        ) : null}
      </Confirm>
      {job ? (
        <section aria-labelledby="bulk-job-title" class="bulk-job">
          <h2 id="bulk-job-title">Progress</h2>
          <JobProgress job={job} />
        </section>
      ) : null}
    </Page>
  );
}

/** Users with check boxes, the ticked ones being who the update reaches. */
function UserPicks(p: {
  legend: string;
  users: User[];
  total: number;
  picked: Set<number>;
  onChange: (s: Set<number>) => void;
  filter?: string;
  empty: string;
}) {
  const q = (p.filter ?? '').trim().toLowerCase();
  const shown = q
    ? p.users.filter((u) => [u.displayName, u.username, u.extension ?? '', ...u.emails].some((s) => s.toLowerCase().includes(q)))
    : p.users;
  const set = (ids: number[], on: boolean) => {
    const next = new Set(p.picked);
    for (const id of ids) on ? next.add(id) : next.delete(id);
    p.onChange(next);
  };
  const ticked = p.users.filter((u) => p.picked.has(u.id)).length;
  return (
    <fieldset class="user-picks">
      <legend>{p.legend}</legend>
      <div class="actions">
        <button
          type="button"
          class="secondary"
          onClick={() =>
            set(
              shown.map((u) => u.id),
              true,
            )
          }
          disabled={shown.length === 0}
        >
          Select all{q ? ' shown' : ''}
        </button>
        <button
          type="button"
          class="secondary"
          onClick={() =>
            set(
              shown.map((u) => u.id),
              false,
            )
          }
          disabled={shown.length === 0}
        >
          Select none{q ? ' shown' : ''}
        </button>
        <span class="muted" role="status">
          {ticked} of {p.total} selected
        </span>
      </div>
      {p.users.length < p.total ? (
        <p class="notice warning">
          Only the first {p.users.length} of {p.total} users are listed. For more, apply to a location or to all users, or use the CSV.
        </p>
      ) : null}
      {p.users.length === 0 ? <p class="muted">{p.empty}</p> : null}
      {q && shown.length === 0 && p.users.length > 0 ? <p class="muted">No user matches “{p.filter}”.</p> : null}
      <ul>
        {shown.map((u) => (
          <li key={u.id}>
            <Checkbox
              label={`${u.displayName} (${u.username}${u.extension ? `, ext. ${u.extension}` : ''})`}
              checked={p.picked.has(u.id)}
              onChange={(on) => set([u.id], on)}
              hint={u.emails.length ? `Now: ${u.emails.join(', ')}` : 'Now: no notification emails'}
            />
          </li>
        ))}
      </ul>
    </fieldset>
  );
}

/** A modal confirm step (native <dialog>: focus stays inside, Esc cancels). */
function Confirm(p: {
  open: boolean;
  title: string;
  confirmLabel: string;
  busy: boolean;
  onCancel: () => void;
  onConfirm: () => void;
  children: ComponentChildren;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (p.open && !d.open) d.showModal();
    if (!p.open && d.open) d.close();
  }, [p.open]);
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="bulk-confirm-title" onClose={() => p.open && p.onCancel()}>
      <h2 id="bulk-confirm-title">{p.title}</h2>
      <div class="notice warning">{p.children}</div>
      <div class="actions">
        <button type="button" class="danger" disabled={p.busy} onClick={p.onConfirm}>
          {p.confirmLabel}
        </button>
        {/* biome-ignore lint/a11y/noAutofocus: the question has just opened; focus goes to its safe answer, as a confirm dialog's should */}
        <button type="button" class="secondary" autoFocus onClick={p.onCancel}>
          Cancel
        </button>
      </div>
    </dialog>
  );
}
