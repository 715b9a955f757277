// Topic names of the MQTT contract: e911/v1/<deviceId>/<kind>[/<name>].
import { PAYLOADS, PUBLISHER, type TopicKind } from './messages.js';

export const TOPIC_ROOT = 'e911/v1';

type By<P extends 'phone' | 'server'> = { [K in TopicKind]: (typeof PUBLISHER)[K] extends P ? K : never }[TopicKind];

/** Every topic kind, in PAYLOADS order: derived, so a new payload kind has a topic. */
export const KINDS = Object.keys(PAYLOADS).filter((k): k is TopicKind => k in PUBLISHER);
/** Topics the phone publishes. */
export const PHONE_PUBLISHES: readonly By<'phone'>[] = KINDS.filter((k): k is By<'phone'> => PUBLISHER[k] === 'phone');
/** Topics the server publishes to a phone. */
export const SERVER_PUBLISHES: readonly By<'server'>[] = KINDS.filter((k): k is By<'server'> => PUBLISHER[k] === 'server');

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME = /^[a-z][a-z0-9-]{0,31}$/;

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}

export function topicFor(deviceId: string, kind: TopicKind, name?: string): string {
  if (!isValidDeviceId(deviceId)) throw new TypeError(`invalid device id ${JSON.stringify(deviceId)}`);
  if ((kind === 'cmd' || kind === 'response') !== (name !== undefined)) {
    throw new TypeError(`topic kind ${kind} ${name === undefined ? 'needs' : 'takes no'} a name`);
  }
  if (name !== undefined && !NAME.test(name)) throw new TypeError(`invalid command name ${JSON.stringify(name)}`);
  return name === undefined ? `${TOPIC_ROOT}/${deviceId}/${kind}` : `${TOPIC_ROOT}/${deviceId}/${kind}/${name}`;
}

/** Wildcard subscription across all phones (for the server), or one phone's kind. */
export function topicFilter(kind: TopicKind, deviceId = '+'): string {
  return kind === 'cmd' || kind === 'response' ? `${TOPIC_ROOT}/${deviceId}/${kind}/+` : `${TOPIC_ROOT}/${deviceId}/${kind}`;
}

export interface ParsedTopic {
  deviceId: string;
  kind: TopicKind;
  name?: string;
}

export function parseTopic(topic: string): ParsedTopic | null {
  const prefix = `${TOPIC_ROOT}/`;
  if (!topic.startsWith(prefix)) return null;
  const rest = topic.slice(prefix.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return null;
  const deviceId = rest.slice(0, slash);
  const tail = rest.slice(slash + 1);
  if (!isValidDeviceId(deviceId)) return null;
  for (const kind of KINDS) {
    if (tail === kind && kind !== 'cmd' && kind !== 'response') return { deviceId, kind };
    if ((kind === 'cmd' || kind === 'response') && tail.startsWith(`${kind}/`)) {
      const name = tail.slice(kind.length + 1);
      return NAME.test(name) ? { deviceId, kind, name } : null;
    }
  }
  return null;
}
