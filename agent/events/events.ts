// Builds the events the phone sends the server. Each gets its stable id here,
// before it is stored, so the server can de-duplicate redeliveries by id.
import { randomUUID } from 'node:crypto';
import type { EventPayload, EventType } from '../../provisioning/protocol/messages.js';

export type EventFactory = (type: EventType, data: Record<string, unknown>) => EventPayload;

export function eventFactory(deviceId: string, now: () => Date = () => new Date()): EventFactory {
  return (type, data) => ({ v: 1, id: randomUUID(), type, deviceId, ts: now().toISOString(), data });
}
