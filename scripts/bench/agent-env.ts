// What the benches that run the agent share: the environment of the phone's systemd unit
// (NODE_OPTIONS, MALLOC_ARENA_MAX), so the bundle runs as on the phone, and Nagle off on
// the baseline clients, as the agent and server turn it off.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type mqtt from 'mqtt';
import { AGENT_BUNDLE } from '../../test/helpers/agent.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The unit's Environment= lines (run from dist/scripts/bench). */
export function unitEnvironment(file = path.join(here, '../../../scripts/phone/e911-agent.service')): Record<string, string> {
  const unit = readFileSync(file, 'utf8');
  return Object.fromEntries([...unit.matchAll(/^Environment="?([A-Z_]+)=([^"\n]*)"?$/gm)].map((m) => [m[1]!, m[2]!]));
}

export const noDelay = (c: mqtt.MqttClient): void => (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);

/** The bundle this tree built and, with BENCH_BASE_BUNDLE=FILE, an earlier build's to run beside it; each must exist. */
export function bundles(): { bundle: string; base: string | null } {
  if (!existsSync(AGENT_BUNDLE)) throw new Error(`${AGENT_BUNDLE} is missing: run npm run build:arm`);
  const base = process.env.BENCH_BASE_BUNDLE ? path.resolve(process.env.BENCH_BASE_BUNDLE) : null;
  if (base && !existsSync(base)) throw new Error(`BENCH_BASE_BUNDLE ${base} is missing`);
  return { bundle: AGENT_BUNDLE, base };
}
