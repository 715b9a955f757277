// Where each phone stands with the emergency-services notice. The phone shows the notice
// for every address it applies and reports only the user's acknowledgement (its
// notice-acknowledged event, agent/handset/notice.ts), so "shown" is the applied address
// itself (since it was applied) and "acknowledged" is an acknowledgement of that same
// address document (by its hash).
import type { Device } from './db/repo.js';

export type NoticeState = 'acknowledged' | 'shown' | 'none';

export interface NoticeStatus {
  /** acknowledged: for the address the phone holds; shown: waiting for the user; none: no address applied, nothing acknowledged. */
  state: NoticeState;
  /** The address version the state is about (null: the phone holds no address). */
  addressVersion: number | null;
  shownAt: string | null;
  acknowledgedAt: string | null;
  /** keypad (the user) or cli (a technician for them). */
  via: string | null;
  /** The user the phone had when the acknowledgement arrived. */
  userId: number | null;
  /** An acknowledgement of an earlier address, when the current one is not acknowledged yet. */
  previousAcknowledgedVersion: number | null;
}

export function noticeStatus(d: Pick<Device, 'appliedVersion' | 'appliedHash' | 'appliedAt' | 'noticeAck'>): NoticeStatus {
  const ack = d.noticeAck;
  const forCurrent = ack !== null && (d.appliedVersion === null ? ack.version === null : ack.hash !== null && ack.hash === d.appliedHash);
  if (ack && forCurrent)
    return {
      state: 'acknowledged',
      addressVersion: ack.version,
      shownAt: ack.shownAt,
      acknowledgedAt: ack.acknowledgedAt,
      via: ack.via,
      userId: ack.userId,
      previousAcknowledgedVersion: null,
    };
  return {
    state: d.appliedVersion === null ? 'none' : 'shown',
    addressVersion: d.appliedVersion,
    shownAt: d.appliedVersion === null ? null : d.appliedAt,
    acknowledgedAt: null,
    via: null,
    userId: null,
    previousAcknowledgedVersion: ack?.version ?? null,
  };
}

/** One line for a CSV cell or a log: "phone-1: acknowledged address v3 at 2026-...Z (keypad)". */
export function noticeSummary(deviceId: string, s: NoticeStatus): string {
  const v = s.addressVersion === null ? 'no address' : `address v${s.addressVersion}`;
  if (s.state === 'acknowledged') return `${deviceId}: acknowledged ${v} at ${s.acknowledgedAt}${s.via ? ` (${s.via})` : ''}`;
  if (s.state === 'shown') return `${deviceId}: shown ${v} since ${s.shownAt ?? 'unknown'}, not acknowledged`;
  return `${deviceId}: no address applied, nothing acknowledged`;
}
