// Phones: each phone's connection, whether it applied the address it was
// issued, what it last reported about where it is, and any location mismatch;
// kept current by the server's 'phone' events. Actions: push again, new MQTT
// credentials (the password is shown once). The emergency-services notice per
// phone (shown or acknowledged, when, for which address version), with a filter
// for the phones whose user has not acknowledged it.
import { useEffect, useState } from 'preact/hooks';
import type { RouteProps } from '../route.js';
import type { Location, LocationReport, NoticeStatus, PhoneView, ReportedLocation } from '../types.js';
import { Checkbox, ErrorBox, Page, Saved, Table, useApp, useLoad, when } from '../ui.js';
import './status.css';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | null => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : null);
const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null);

/** "100 Main St, San Jose, CA 95110" from RFC 5139 civic elements. */
export function civicLine(c: unknown): string | null {
  const o = obj(c);
  if (!o) return null;
  const street = [o.HNO, o.HNS, o.PRD, o.RD, o.STS, o.POD].map(str).filter(Boolean).join(' ');
  const unit = [o.BLD ? `Bldg ${str(o.BLD)}` : null, o.FLR ? `Floor ${str(o.FLR)}` : null, o.ROOM ? `Room ${str(o.ROOM)}` : null]
    .filter(Boolean)
    .join(' ');
  const cityLine = [str(o.A3), [str(o.A1), str(o.PC)].filter(Boolean).join(' ')].filter(Boolean).join(', ');
  const line = [street, unit, cityLine].filter(Boolean).join(', ');
  return line || null;
}

/** A readable line for the phone's last location report (its shape: PAYLOADS.location). */
export function reportSummary(report: LocationReport): string {
  const best = report.data.best;
  if (!best) return `no location found (source ${report.source || 'none'})`;
  const where = civicLine(best.civic) ?? (best.geo ? geoLine(best.geo) : null);
  const parts = [
    best.locationCode ? `location ${best.locationCode}` : null,
    where,
    `from ${best.source}${best.method ? ` (${best.method})` : ''}`,
  ];
  return parts.filter(Boolean).join(' · ') + (best.dispatchable ? '' : ' · not dispatchable');
}

function geoLine(g: NonNullable<ReportedLocation['geo']>): string {
  return `${g.latitude.toFixed(5)}, ${g.longitude.toFixed(5)}`;
}

/** What the phone's network said against its assigned location. */
function mismatchSummary(m: unknown, names: Map<string, string>): string {
  const o = obj(m);
  if (!o) return 'location mismatch';
  const name = (id: unknown) => (str(id) ? (names.get(str(id)!) ?? `location ${str(id)}`) : 'none');
  const matches = Array.isArray(o.matchingLocationIds) ? o.matchingLocationIds.map(name) : [];
  return [
    `Assigned: ${name(o.assignedLocationId)}`,
    `network matches: ${matches.length ? matches.join(', ') : 'no known location'}`,
    str(o.reason),
  ]
    .filter(Boolean)
    .join('; ');
}

const NETWORK_SOURCE: Record<string, string> = { 'lldp-med': 'Switch (LLDP-MED)', dhcp: 'Network (DHCP)' };

/** Both addresses of a location disagreement and which one a 911 call sends first. */
export function disagreementLines(
  d: unknown,
): { network: string; provisioned: string; sends: string; fields: string; elin: string | null } | null {
  const o = obj(d);
  if (!o) return null;
  const net = obj(o.network);
  const prov = obj(o.provisioned);
  const source = NETWORK_SOURCE[str(net?.source) ?? ''] ?? 'Network';
  const chosen = str(o.chosen);
  return {
    network: `${source}: ${civicLine(net?.civic) ?? 'unknown'}`,
    provisioned: `Provisioned: ${civicLine(prov?.civic) ?? 'unknown'}`,
    sends: `911 sends first: ${chosen === 'network' ? (str(net?.source) === 'dhcp' ? "the network's address" : "the switch's address") : chosen === 'provisioned' ? 'the provisioned address' : 'neither'} (policy ${str(o.policy) ?? 'network-first'})`,
    fields: Array.isArray(o.fields) ? o.fields.map(str).filter(Boolean).join(', ') : '',
    elin: str(o.elin),
  };
}

/** The notice on one phone: acknowledged (when, which address version) or only shown. */
export function NoticeCell({ notice: n }: { notice: NoticeStatus }) {
  const v = n.addressVersion === null ? 'no address' : `address v${n.addressVersion}`;
  if (n.state === 'acknowledged')
    return (
      <span class="ok" data-notice="acknowledged">
        Acknowledged, {v}
        <small class="muted block">
          {when(n.acknowledgedAt)}
          {n.via === 'cli' ? ' (by a technician)' : ''}
        </small>
      </span>
    );
  if (n.state === 'shown')
    return (
      <span class="warn" data-notice="shown">
        Shown, not acknowledged, {v}
        <small class="muted block">
          since {when(n.shownAt)}
          {n.previousAcknowledgedVersion !== null ? `; acknowledged v${n.previousAcknowledgedVersion} before` : ''}
        </small>
      </span>
    );
  return (
    <span class="muted" data-notice="none">
      No address on the phone yet
    </span>
  );
}

export function PhonesPage(_: RouteProps) {
  const { api, live } = useApp();
  const [unacked, setUnacked] = useState(false);
  const phones = useLoad(() => api.get<PhoneView[]>(`/api/phones${unacked ? '?notice=unacknowledged' : ''}`), [unacked]);
  const locations = useLoad(() => api.get<Location[]>('/api/locations'));
  const [creds, setCreds] = useState<{ username: string; password: string } | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);

  useEffect(() => {
    // Bursts (a push to many phones) come as many events: one reload per animation frame is plenty.
    let pending = 0;
    const reload = () => {
      if (pending) return;
      pending = requestAnimationFrame(() => {
        pending = 0;
        phones.reload();
      });
    };
    const offPhone = live.on('phone', reload);
    const offChange = live.on('change', (c) => (c.entity === 'phone' || c.entity === 'user') && reload());
    return () => {
      offPhone();
      offChange();
      if (pending) cancelAnimationFrame(pending);
    };
  }, [live]);

  const names = new Map((locations.data ?? []).map((l) => [String(l.id), `${l.code} (${l.name})`]));

  const push = async (id: string) => {
    setActionError(null);
    setMessage(null);
    try {
      await api.post(`/api/phones/${encodeURIComponent(id)}/push`);
      setMessage(`Address and locations pushed again to ${id}.`);
    } catch (err) {
      setActionError(err);
    }
  };
  const issue = async (id: string) => {
    setActionError(null);
    setMessage(null);
    try {
      setCreds(await api.post<{ username: string; password: string }>(`/api/phones/${encodeURIComponent(id)}/credentials`));
    } catch (err) {
      setActionError(err);
    }
  };

  const list = phones.data ?? [];
  const online = list.filter((p) => p.online).length;
  return (
    <Page title="Phones">
      <ErrorBox error={phones.error ?? locations.error} title="Could not load" />
      <ErrorBox error={actionError} title="Not done" />
      <Saved message={message} />
      {creds ? <Credentials creds={creds} onClose={() => setCreds(null)} /> : null}
      <p>
        {list.length} phones: {online} online, {list.length - online} offline, {list.filter((p) => p.issuedVersion > 0 && !p.inSync).length}{' '}
        waiting for their address, {list.filter((p) => p.mismatch).length} with a location mismatch,{' '}
        {list.filter((p) => p.disagreement).length} whose network says another address
        {unacked ? '' : `, ${list.filter((p) => p.notice.state !== 'acknowledged').length} whose notice is not acknowledged`}.
      </p>
      <Checkbox
        label="Only phones whose emergency-services notice is not acknowledged"
        checked={unacked}
        onChange={setUnacked}
        hint="The phone shows the notice for each new address until its user presses OK."
      />
      {phones.data && list.length === 0 ? <p class="muted">No phones yet: assign device ids to users on the Users page.</p> : null}
      {list.length ? (
        <Table
          class="phones"
          caption="Every phone, its connection, address and location"
          wrap
          headers={[
            'Phone',
            'User',
            'Connection',
            'Address version',
            'Last location report',
            'Location mismatch',
            'Address disagreement',
            'Emergency notice',
            'Actions',
          ]}
        >
          {list.map((p) => (
            <PhoneRow key={p.deviceId} p={p} names={names} onPush={push} onIssue={issue} />
          ))}
        </Table>
      ) : null}
    </Page>
  );
}

function PhoneRow({
  p,
  names,
  onPush,
  onIssue,
}: {
  p: PhoneView;
  names: Map<string, string>;
  onPush: (id: string) => void;
  onIssue: (id: string) => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const waiting = p.issuedVersion > 0 && !p.inSync;
  return (
    <tr data-device-id={p.deviceId} class={p.mismatch || p.disagreement ? 'mismatch' : undefined}>
      <th scope="row">
        <code>{p.deviceId}</code>
        {p.agentVersion ? <small class="muted block">agent {p.agentVersion}</small> : null}
      </th>
      <td>
        {p.user ? <a href={`#/users/${p.user.id}`}>{p.user.displayName || p.user.username}</a> : <span class="muted">unassigned</span>}
        {p.locationCode ? <small class="muted block">{p.locationCode}</small> : null}
      </td>
      <td data-testid="connection">
        <span class={p.online ? 'ok' : 'bad'}>{p.online ? 'Online' : 'Offline'}</span>
        <small class="muted block">last seen {when(p.lastSeen)}</small>
      </td>
      <td data-testid="address">
        {p.issuedVersion === 0 ? (
          <span class="muted">none issued</span>
        ) : (
          <>
            applied {p.appliedVersion ?? 'none'} of issued {p.issuedVersion}{' '}
            <span class={waiting ? 'warn' : 'ok'}>{waiting ? '(waiting)' : '(in sync)'}</span>
            <small class="muted block">{p.appliedAt ? `applied ${when(p.appliedAt)}` : `issued ${when(p.issuedAt)}`}</small>
          </>
        )}
      </td>
      <td data-testid="location">
        {p.lastLocation ? (
          <>
            {reportSummary(p.lastLocation)}
            <small class="muted block">{when(p.lastLocationAt)}</small>
          </>
        ) : (
          <span class="muted">none yet</span>
        )}
      </td>
      <td data-testid="mismatch">
        {p.mismatch ? (
          <strong class="bad">
            Mismatch: {mismatchSummary(p.mismatch, names)}
            <small class="block">{when(p.mismatchAt)}</small>
          </strong>
        ) : (
          <span class="muted">none</span>
        )}
      </td>
      <td data-testid="disagreement">
        <Disagreement d={p.disagreement} at={p.disagreementAt} />
      </td>
      <td data-testid="notice">
        <NoticeCell notice={p.notice} />
      </td>
      <td>
        <div class="actions">
          <button
            type="button"
            class="secondary"
            aria-label={`Push again to ${p.deviceId}`}
            onClick={() => onPush(p.deviceId)}
            disabled={p.userId === null}
          >
            Push again
          </button>
          {confirming ? (
            // biome-ignore lint/a11y/useSemanticElements: an inline row of two buttons; a fieldset brings the form-section border and spacing
            <div class="confirm" role="group" aria-label={`Confirm new credentials for ${p.deviceId}`}>
              <small>The phone's current password stops working: the next time it connects it needs the new one.</small>
              <button
                type="button"
                class="danger"
                onClick={() => {
                  setConfirming(false);
                  onIssue(p.deviceId);
                }}
              >
                Issue for {p.deviceId}
              </button>
              <button type="button" class="secondary" onClick={() => setConfirming(false)}>
                Cancel
              </button>
            </div>
          ) : (
            <button
              type="button"
              class="secondary"
              aria-label={`New MQTT credentials for ${p.deviceId}`}
              onClick={() => setConfirming(true)}
            >
              New credentials
            </button>
          )}
        </div>
      </td>
    </tr>
  );
}

function Credentials({ creds, onClose }: { creds: { username: string; password: string }; onClose: () => void }) {
  return (
    <div class="notice warning creds" role="alert">
      <strong>New MQTT credentials for {creds.username}.</strong> The password is shown this once: the server keeps only its hash. Put it on
      the phone now (its broker user name is its device id).
      <dl>
        <dt>User name</dt>
        <dd>
          <code>{creds.username}</code>
        </dd>
        <dt>Password</dt>
        <dd>
          <code data-testid="new-password">{creds.password}</code>
        </dd>
      </dl>
      <button type="button" onClick={onClose}>
        I have copied it
      </button>
    </div>
  );
}

function Disagreement({ d, at }: { d: unknown; at: string | null }) {
  const v = disagreementLines(d);
  if (!v) return <span class="muted">none</span>;
  return (
    <strong class="bad">
      Differs ({v.fields}):
      <small class="block">{v.network}</small>
      <small class="block">{v.provisioned}</small>
      <small class="block">{v.sends}</small>
      {v.elin ? <small class="block">ELIN {v.elin}</small> : null}
      <small class="block">{when(at)}</small>
    </strong>
  );
}
