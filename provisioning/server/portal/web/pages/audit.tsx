// The audit log: who did what to which entity and when, newest first, filtered
// by entity, paged back with "Older" (the server's before=<seq>).
import { useEffect, useRef, useState } from 'preact/hooks';
import type { RouteProps } from '../route.js';
import type { AuditEntry } from '../types.js';
import { ErrorBox, Page, Select, Table, useApp, when } from '../ui.js';
import './status.css';

const PAGE = 50;
const ENTITIES = ['account', 'location', 'user', 'phone', 'event', 'job', 'csv', 'token', 'broker'];

export function AuditPage(_: RouteProps) {
  const { api } = useApp();
  const [entity, setEntity] = useState('');
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const [n, setN] = useState(0);
  // Each load's number: an answer to an earlier filter, arriving late, is dropped.
  const latest = useRef(0);

  const load = async (before: number | null, replace: boolean) => {
    const mine = ++latest.current;
    setLoading(true);
    setError(null);
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (entity) q.set('entity', entity);
    if (before !== null) q.set('before', String(before));
    try {
      const page = await api.get<AuditEntry[]>(`/api/audit?${q.toString()}`);
      if (mine !== latest.current) return;
      setEntries((cur) => (replace ? page : [...cur, ...page]));
      setMore(page.length === PAGE);
      setLoaded(true);
    } catch (err) {
      if (mine === latest.current) setError(err as Error);
    } finally {
      if (mine === latest.current) setLoading(false);
    }
  };

  useEffect(() => {
    void load(null, true);
  }, [entity, n]);

  const last = entries[entries.length - 1];
  return (
    <Page
      title="Audit log"
      actions={
        <button type="button" class="secondary" onClick={() => setN((x) => x + 1)} disabled={loading}>
          Refresh
        </button>
      }
    >
      <ErrorBox error={error} title="Could not load" />
      <div class="audit-filter">
        <Select
          label="Entity"
          value={entity}
          onChange={setEntity}
          options={[{ value: '', label: 'All entities' }, ...ENTITIES.map((e) => ({ value: e, label: e }))]}
          hint="Show only what was done to one kind of thing."
        />
      </div>
      {loaded && entries.length === 0 ? <p class="muted">Nothing recorded{entity ? ` for ${entity}` : ''}.</p> : null}
      {entries.length ? (
        <Table class="audit" caption="Audit log, newest first" wrap headers={['When', 'Who', 'What', 'Entity', 'Details']}>
          {entries.map((e) => (
            <tr key={e.seq} data-seq={e.seq} data-action={e.action}>
              <td>{when(e.at)}</td>
              <td>{e.actor}</td>
              <th scope="row">{e.action}</th>
              <td>
                {e.entity}
                {e.entityId ? (
                  <>
                    {' '}
                    <EntityLink entity={e.entity} id={e.entityId} action={e.action} />
                  </>
                ) : null}
              </td>
              <td>
                {e.details === null || e.details === undefined ? (
                  <span class="muted">—</span>
                ) : (
                  <details>
                    <summary>{summary(e.details)}</summary>
                    <pre>{JSON.stringify(e.details, null, 1)}</pre>
                  </details>
                )}
              </td>
            </tr>
          ))}
        </Table>
      ) : null}
      <p class="actions" aria-live="polite">
        {more && last ? (
          <button type="button" class="secondary" disabled={loading} onClick={() => void load(last.seq, false)}>
            Older
          </button>
        ) : loaded && entries.length ? (
          <span class="muted">The beginning of the log.</span>
        ) : null}
        {loading ? <span class="muted">Loading…</span> : null}
      </p>
    </Page>
  );
}

/** The first members of the details, on one line, for the closed <details>. */
function summary(d: unknown): string {
  const text = JSON.stringify(d);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

function EntityLink({ entity, id, action }: { entity: string; id: string; action: string }) {
  const call = entity === 'event' && (action === 'phone.emergency-call' || action === 'phone.test-call');
  const href =
    entity === 'location'
      ? `#/locations/${id}`
      : entity === 'user'
        ? `#/users/${id}`
        : call
          ? `#/calls/${encodeURIComponent(id)}`
          : entity === 'phone'
            ? '#/phones'
            : null;
  return href ? <a href={href}>{id}</a> : <code>{id}</code>;
}
