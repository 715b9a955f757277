// A part not needed to place 911 that fails to start never stops the agent: it
// is logged, reported (a part-failed event) and tried again with backoff, while
// 911 works. Here the control socket's group does not exist (its chown fails).
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/root.js';
import { parseConfig } from '../../agent/config.js';
import { hostPaths } from '../../hal/host.js';
import type { Store } from '../../agent/store/store.js';
import type { EmergencyService } from '../../agent/emergency/service.js';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { silentLog } from '../helpers/log.js';
import { unitAgentRaw, waitFor } from '../helpers/agent.js';

const dirs: string[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('fault isolation', () => {
  it('the control socket fails to start (its folder is a file): the agent runs, reports it, tries again, and 911 works', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-isolation-'));
    dirs.push(dir);
    // An unknown control.group is only logged (the socket stays usable by root); a socket
    // whose folder cannot be made fails to start.
    writeFileSync(path.join(dir, 'blocker'), '');
    const socketPath = path.join(dir, 'blocker', 'control.sock');
    const raw = unitAgentRaw(dir, generateSigningKeyPair().publicKey, { control: { socketPath } });
    const voice = new MemoryVoiceStack();
    const agent = new Agent({ config: parseConfig(raw), log: silentLog(), env: {}, host: hostPaths({}), voice });
    agents.push(agent);
    await agent.start();
    expect(agent.running).toBe(true);
    const store = (agent as unknown as { parts: { store: Store } }).parts.store;
    const failures = () =>
      store
        .pendingEvents(0, 1000)
        .map((r) => JSON.parse(r.payload) as EventPayload)
        .filter((e) => e.type === 'part-failed');
    // Tried again with backoff: a second and a third attempt, each reported.
    await waitFor(
      () => failures().length >= 3,
      5000,
      () => JSON.stringify(failures()),
    );
    expect(failures()[0]!.data).toMatchObject({ part: 'control', attempt: 1, retryInMs: 20 });
    expect(failures()[1]!.data).toMatchObject({ part: 'control', attempt: 2, retryInMs: 40 });
    expect(failures()[0]!.data.reason).toContain('blocker');
    expect(existsSync(socketPath)).toBe(false);
    const emergency = (agent as unknown as { core: { emergency: EmergencyService } }).core.emergency;
    expect(emergency.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    expect(voice.calls).toHaveLength(1);
  });
});
