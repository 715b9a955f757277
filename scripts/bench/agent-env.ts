// What the benches that run the agent share: the environment of the phone's systemd unit
// (NODE_OPTIONS, MALLOC_ARENA_MAX), so the bundle runs as on the phone, and Nagle off on
// the baseline clients, as the agent and server turn it off.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type mqtt from 'mqtt';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The unit's Environment= lines (run from dist/scripts/bench). */
export function unitEnvironment(): Record<string, string> {
  const unit = readFileSync(path.join(here, '../../../scripts/phone/e911-agent.service'), 'utf8');
  return Object.fromEntries([...unit.matchAll(/^Environment="?([A-Z_]+)=([^"\n]*)"?$/gm)].map((m) => [m[1]!, m[2]!]));
}

export const noDelay = (c: mqtt.MqttClient): void => (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
