// The first page: is E911 on, are the phones well, the latest calls (live).
import { useEffect, useState } from 'preact/hooks';
import type { AccountView, Job, PhoneView, StoredEvent } from '../types.js';
import { ErrorBox, JobProgress, Page, Table, useApp, useLoad, when } from '../ui.js';
import type { RouteProps } from '../route.js';

const CALL_TYPES = new Set(['emergency-call', 'test-call']);

export function Dashboard(_: RouteProps) {
  const { api, live } = useApp();
  const account = useLoad(() => api.get<AccountView>('/api/account'));
  const phones = useLoad(() => api.get<PhoneView[]>('/api/phones'));
  const [calls, setCalls] = useState<StoredEvent[]>([]);
  const [callsError, setCallsError] = useState<Error | null>(null);
  const [jobs, setJobs] = useState<Job[]>([]);

  useEffect(() => {
    api.get<StoredEvent[]>('/api/events?type=emergency-call,test-call&limit=10').then(setCalls, setCallsError);
    const offEvent = live.on('event', (e) => {
      if (CALL_TYPES.has(e.type)) setCalls((list) => (list.some((c) => c.id === e.id) ? list : [e, ...list].slice(0, 10)));
    });
    // Jobs started here or on another screen: a bulk update or CSV apply keeps its progress here after its page is left.
    api.get<Job[]>('/api/jobs').then((list) => setJobs(list.slice(0, 5)), setCallsError);
    const offJob = live.on('job', (j) =>
      setJobs((list) => [j, ...list.filter((x) => x.id !== j.id)].sort((a, b) => b.id - a.id).slice(0, 5)),
    );
    const offPhone = live.on('phone', () => phones.reload());
    const offChange = live.on('change', (c) => c.entity === 'account' && account.reload());
    return () => {
      offEvent();
      offJob();
      offPhone();
      offChange();
    };
  }, [api, live]);

  const list = phones.data ?? [];
  const online = list.filter((p) => p.online).length;
  return (
    <Page title="Dashboard">
      <ErrorBox error={account.error ?? phones.error ?? callsError} title="Could not load" />
      <div class="cards">
        <section class="card" aria-labelledby="e911-state">
          <h2 id="e911-state">E911</h2>
          {account.data ? (
            account.data.e911Enabled ? (
              <p class="ok">Enabled since {when(account.data.e911ChangedAt)}</p>
            ) : (
              <>
                <p class="warn">Not enabled: phones receive no address until it is.</p>
                {account.data.missing.length ? (
                  <ul>
                    {account.data.missing.map((m) => (
                      <li key={m}>{m}</li>
                    ))}
                  </ul>
                ) : null}
                <a href="#/account">Account settings</a>
              </>
            )
          ) : null}
        </section>
        <section class="card" aria-labelledby="phones-state">
          <h2 id="phones-state">Phones</h2>
          <p>
            <strong data-testid="phones-online">{online}</strong> online, <strong>{list.length - online}</strong> offline
          </p>
          <p>
            {list.filter((p) => !p.inSync && p.issuedVersion > 0).length} waiting for their address, {list.filter((p) => p.mismatch).length}{' '}
            with a location mismatch
          </p>
          <a href="#/phones">All phones</a>
        </section>
      </div>
      <section aria-labelledby="recent-calls">
        <h2 id="recent-calls">Latest emergency and test calls</h2>
        {calls.length === 0 ? (
          <p class="muted">No calls yet.</p>
        ) : (
          <Table class="calls" headers={['When', 'Call', 'Caller', 'Phone']}>
            {calls.map((c) => (
              <tr key={c.id} class={c.type === 'emergency-call' ? 'emergency' : 'test'} data-event-id={c.id}>
                <td>{when(c.ts)}</td>
                <td>
                  <a href={`#/calls/${encodeURIComponent(c.id)}`}>{c.type === 'emergency-call' ? `911 emergency` : 'test call (933)'}</a>
                </td>
                <td>{String(c.data.displayName ?? c.data.callback ?? '—')}</td>
                <td>{c.deviceId}</td>
              </tr>
            ))}
          </Table>
        )}
      </section>
      <section aria-labelledby="recent-jobs">
        <h2 id="recent-jobs">Background jobs</h2>
        {jobs.length === 0 ? <p class="muted">No bulk updates or CSV imports yet.</p> : jobs.map((j) => <JobProgress key={j.id} job={j} />)}
      </section>
    </Page>
  );
}
