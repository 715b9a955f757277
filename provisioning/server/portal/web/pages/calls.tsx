// Emergency calls: the log of 911 and 933 calls, newest first, and each call's
// facts with every recipient's notification delivery; both follow the server's
// 'event' and 'notification' events, so a call and its deliveries show as they happen.
import { useEffect, useState } from 'preact/hooks';
import type { RouteProps } from '../route.js';
import type { EmergencyFacts, Notification, StoredEvent } from '../types.js';
import { ErrorBox, Page, Table, useApp, when } from '../ui.js';
import './status.css';

const CALL_TYPES = new Set(['emergency-call', 'test-call']);
const STATUSES = ['sent', 'unacknowledged', 'failed', 'retry', 'sending', 'pending'] as const;

/** "3 sent, 1 failed" (and "none" when the call had no recipient). */
export function deliverySummary(ns: Notification[]): string {
  if (ns.length === 0) return 'no recipients';
  return STATUSES.map((s) => [s, ns.filter((n) => n.status === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
}

/** A security-desk call: who pressed 1 when, or that nobody did. */
function CallAck({ n }: { n: Notification }) {
  if (n.acknowledgedAt)
    return (
      <small class="block" data-testid="call-ack">
        acknowledged {when(n.acknowledgedAt)} ({n.ackMethod === 'info' ? 'SIP INFO' : 'keypad'})
      </small>
    );
  if (n.status === 'unacknowledged')
    return (
      <small class="block" data-testid="call-ack">
        answered, not acknowledged after {n.plays ?? 0} plays
      </small>
    );
  return null;
}

const callLabel = (e: StoredEvent) =>
  e.type === 'emergency-call' ? '911 emergency' : `test call (${String(e.data.numberDialed ?? '933')})`;
const caller = (e: StoredEvent) => String(e.data.displayName ?? e.data.callerName ?? e.data.callback ?? '—');

/** Puts a notification into a list by id: a newer state replaces the row, an older one is ignored. */
function upsert(list: Notification[], n: Notification): Notification[] {
  const i = list.findIndex((x) => x.id === n.id);
  if (i < 0) return [...list, n].sort((a, b) => a.id - b.id);
  if (n.updatedAt < list[i]!.updatedAt) return list;
  const out = list.slice();
  out[i] = n;
  return out;
}

export function CallsPage({ params }: RouteProps) {
  return params[0] ? <CallDetail id={params[0]} /> : <CallLog />;
}

function CallLog() {
  const { api, live } = useApp();
  const [calls, setCalls] = useState<StoredEvent[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [byEvent, setByEvent] = useState<Map<string, Notification[]>>(new Map());
  const [error, setError] = useState<Error | null>(null);

  useEffect(() => {
    // Subscribe before loading, so nothing that happens in between is lost.
    const offEvent = live.on('event', (e) => {
      if (CALL_TYPES.has(e.type)) setCalls((list) => (list.some((c) => c.id === e.id) ? list : [e, ...list]));
    });
    const offNote = live.on('notification', (n) =>
      setByEvent((m) => {
        const next = new Map(m);
        next.set(n.eventId, upsert(m.get(n.eventId) ?? [], n));
        return next;
      }),
    );
    Promise.all([
      api.get<StoredEvent[]>('/api/events?type=emergency-call,test-call&limit=200'),
      api.get<Notification[]>('/api/notifications?limit=5000'),
    ]).then(([events, notes]) => {
      // Calls heard live while loading are newer than the list.
      setCalls((heard) => [...heard.filter((c) => !events.some((e) => e.id === c.id)), ...events]);
      setLoaded(true);
      setByEvent((heard) => {
        const m = new Map<string, Notification[]>();
        for (const n of [...notes].reverse()) m.set(n.eventId, upsert(m.get(n.eventId) ?? [], n));
        for (const [eventId, ns] of heard) for (const n of ns) m.set(eventId, upsert(m.get(eventId) ?? [], n));
        return m;
      });
    }, setError);
    return () => {
      offEvent();
      offNote();
    };
  }, [api, live]);

  return (
    <Page title="Emergency calls">
      <ErrorBox error={error} title="Could not load" />
      <p class="hint">
        Every 911 and 933 (test) call the phones reported, newest first, with what became of its notifications. New calls appear here as
        they happen.
      </p>
      {loaded && calls.length === 0 ? <p class="muted">No calls yet.</p> : null}
      {calls.length ? (
        <Table
          class="calls call-log"
          caption="Emergency and test calls, newest first"
          wrap
          headers={['When', 'Call', 'Caller', 'Callback', 'Location code', 'Phone', 'Notifications']}
        >
          {calls.map((c) => {
            const ns = byEvent.get(c.id) ?? [];
            return (
              <tr key={c.id} class={c.type === 'emergency-call' ? 'emergency' : 'test'} data-event-id={c.id}>
                <td>{when(c.ts)}</td>
                <th scope="row">
                  <a href={`#/calls/${encodeURIComponent(c.id)}`}>{callLabel(c)}</a>
                </th>
                <td>{caller(c)}</td>
                <td>{String(c.data.callback ?? '—')}</td>
                <td>{String(c.data.locationCode ?? '—')}</td>
                <td>
                  <code>{c.deviceId}</code>
                </td>
                <td
                  data-testid="deliveries"
                  class={
                    ns.some((n) => n.status === 'failed' || n.status === 'unacknowledged')
                      ? 'bad'
                      : ns.some((n) => n.status !== 'sent')
                        ? 'warn'
                        : 'ok'
                  }
                >
                  {deliverySummary(ns)}
                </td>
              </tr>
            );
          })}
        </Table>
      ) : null}
    </Page>
  );
}

type Detail = StoredEvent & { facts: EmergencyFacts | null; notifications: Notification[] };

function CallDetail({ id }: { id: string }) {
  const { api, live } = useApp();
  const [call, setCall] = useState<Detail | null>(null);
  const [error, setError] = useState<Error | null>(null);

  useEffect(() => {
    setCall(null);
    setError(null);
    // Updates heard while loading are at least as new as what is read: kept and applied after.
    let early: Notification[] | null = [];
    const off = live.on('notification', (n) => {
      if (n.eventId !== id) return;
      if (early) early.push(n);
      else setCall((c) => c && { ...c, notifications: upsert(c.notifications, n) });
    });
    api.get<Detail>(`/api/events/${encodeURIComponent(id)}`).then((d) => {
      setCall({ ...d, notifications: (early ?? []).reduce(upsert, d.notifications) });
      early = null;
    }, setError);
    return off;
  }, [api, live, id]);

  const f = call?.facts ?? null;
  const title = call
    ? `${call.type === 'emergency-call' ? '911 call' : 'Test call'} from ${f?.callerName ?? f?.user ?? call.deviceId}`
    : 'Emergency call';
  return (
    <Page title={title} actions={<a href="#/calls">All calls</a>}>
      <ErrorBox error={error} title="Could not load" />
      {call ? (
        <>
          {call.type === 'emergency-call' ? (
            <p class="notice error">A 911 call: emergency services were called.</p>
          ) : (
            <p class="notice warning">A 933 test call: not an emergency.</p>
          )}
          <section aria-labelledby="facts-title">
            <h2 id="facts-title">The call</h2>
            <dl class="facts">
              <dt>Caller</dt>
              <dd>
                {f?.callerName ?? '—'}
                {f?.user ? ` (user ${f.user})` : ''}
              </dd>
              <dt>Callback number</dt>
              <dd>{f?.callback ?? '—'}</dd>
              <dt>Number dialed</dt>
              <dd>{f?.dialed ?? '—'}</dd>
              <dt>Address sent</dt>
              <dd>
                {f?.addressLines.length ? f.addressLines.join(', ') : <strong class="bad">none</strong>}
                {f ? (
                  <small class="muted block">
                    {f.addressSource === 'sent'
                      ? 'as the phone sent it to the PSAP'
                      : f.addressSource === 'provisioned'
                        ? 'as provisioned: the phone did not report what it sent'
                        : ''}
                  </small>
                ) : null}
                {f?.addressMissing ? <strong class="bad block">The call went out without a validated address.</strong> : null}
              </dd>
              <dt>Location code</dt>
              <dd>
                {f?.locationCode ?? '—'}
                {f?.locationName ? ` (${f.locationName})` : ''}
              </dd>
              <dt>Phone</dt>
              <dd>
                <code>{call.deviceId}</code>
                {f?.deviceIp ? `, ${f.deviceIp}` : ''}
                {f?.deviceMac ? `, ${f.deviceMac}` : ''}
              </dd>
              <dt>Time</dt>
              <dd>
                {f?.timeLocal ?? when(call.ts)}
                <small class="muted block">received by the server {when(call.receivedAt)}</small>
              </dd>
              <dt>Call placed</dt>
              <dd>
                {f?.placed === null || f === null ? (
                  '—'
                ) : f.placed ? (
                  'yes'
                ) : (
                  <strong class="bad">no: the phone could not place the call</strong>
                )}
              </dd>
              <dt>Event id</dt>
              <dd>
                <code>{call.id}</code>
              </dd>
            </dl>
          </section>
          <section aria-labelledby="deliveries-title">
            <h2 id="deliveries-title">Notifications</h2>
            <p role="status" data-testid="delivery-summary">
              {deliverySummary(call.notifications)}
            </p>
            {call.notifications.length ? (
              <Table
                class="deliveries"
                caption="Each recipient's notification delivery"
                wrap
                headers={['Recipient', 'Channel', 'Status', 'Attempts', 'Last error', 'Sent at']}
              >
                {call.notifications.map((n) => (
                  <tr key={n.id} data-recipient={n.recipient} data-status={n.status}>
                    <th scope="row">{n.recipient}</th>
                    <td>{n.channel === 'sms' ? 'SMS' : n.channel === 'call' ? 'phone call' : n.channel}</td>
                    <td class={`status-${n.status}`}>
                      {n.status}
                      {n.status === 'retry' ? <small class="block">next try {when(n.nextAttemptAt)}</small> : null}
                      {n.channel === 'call' ? <CallAck n={n} /> : null}
                    </td>
                    <td>{n.attempts}</td>
                    <td class="error-text">{n.lastError ?? '—'}</td>
                    <td>
                      {when(n.sentAt)}
                      {n.providerId ? <small class="muted block">id {n.providerId}</small> : null}
                    </td>
                  </tr>
                ))}
              </Table>
            ) : (
              <p class="notice warning">
                No one was to be notified of this call: check the user's notification emails, the location's admins and the channels.
              </p>
            )}
          </section>
        </>
      ) : null}
    </Page>
  );
}
