// Builds the events the phone sends the server. Each gets its stable id here,
// before it is stored, so the server can de-duplicate redeliveries by id.
import { randomUUID } from 'node:crypto';
import type { EventPayload, EventType, PhoneClock } from '../../provisioning/protocol/messages.js';

export type EventFactory = (type: EventType, data: Record<string, unknown>) => EventPayload;

/**
 * Events whose order the server uses to keep a phone's state get `data.phoneClock`: the
 * kernel's boot id and the monotonic clock (ms since that boot). The server orders them by
 * `mono` within one boot, not by `ts`: after the clock is stepped back a day a new event's ts
 * looks older than the last one's, and it would be dropped as late.
 */
/** Events whose order the server uses to keep a phone's state (the last one wins). */
const ORDERED_EVENT_TYPES: ReadonlySet<EventType> = new Set(['location-disagreement']);

export function eventFactory(deviceId: string, now: () => Date = () => new Date(), clock?: () => PhoneClock | null): EventFactory {
  return (type, data) => {
    const phoneClock = clock && ORDERED_EVENT_TYPES.has(type) ? clock() : null;
    return { v: 1, id: randomUUID(), type, deviceId, ts: now().toISOString(), data: phoneClock ? { ...data, phoneClock } : data };
  };
}

/** The phone's clock from /proc (boot id) and the monotonic clock; null where /proc has no boot id. */
export function procPhoneClock(procDir: string, readFile: (p: string) => string): () => PhoneClock | null {
  let boot: string | null | undefined;
  return () => {
    if (boot === undefined) {
      try {
        boot = readFile(`${procDir}/sys/kernel/random/boot_id`).trim() || null;
      } catch {
        boot = null; // not Linux, or a /proc without it: the server falls back to ts
      }
    }
    return boot ? { boot, mono: Number(process.hrtime.bigint() / 1000n) / 1000 } : null;
  };
}
