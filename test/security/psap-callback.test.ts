// PSAP callback by source address (issue 13, "Phone"): after a 911 call the
// phone answers the PSAP's callback at once, holding or ending other calls.
// Who counts as the PSAP is decided by where the INVITE's packet came from
// (the emergency route's address), never by Via, From or Contact, which the
// caller writes. Here a caller on another loopback address (127.0.0.2)
// writes headers naming the PSAP exactly: the phone only rings. The same
// INVITE from the PSAP's address is answered at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startSipp } from '../helpers/sip.js';
import { freePort } from '../helpers/ports.js';
import { testKeys } from '../helpers/address.js';
import { e911ctl, hdr, parseSippLog, staleBuild } from '../helpers/emergency.js';
import { requires } from '../helpers/require.js';

const FIX = path.resolve(import.meta.dirname, '..', 'fixtures');
const PSAP = path.join(FIX, 'emergency', 'psap-any.xml');
const RINGS = path.join(FIX, 'sipp', 'uac-callback-rings.xml');
const ANSWERED = path.join(FIX, 'sipp', 'uac-callback-answered.xml');

const gate = requires('the PSAP callback tests', ['voice', 'sipp']);
const stale = staleBuild(['agent/main.ts', 'agent/emergency/service.ts']);

describe.skipIf(gate.skip)('a PSAP callback is known by its source address, not by its headers', () => {
  let dir: string;
  let agent: AgentProcess;
  let socketPath: string;
  let sipPort: number;
  let psapPort: number;

  beforeAll(async () => {
    if (stale) throw new Error(stale);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-callback-'));
    psapPort = await freePort();
    sipPort = await freePort();
    // No broker is needed here: events wait in the outbox.
    const setup = agentConfig(
      dir,
      { deviceId: 'phone-cb', brokerUrl: `mqtt://127.0.0.1:${await freePort()}`, serverPublicKey: testKeys().pair.publicKey },
      {
        sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: sipPort, rtpPort: await freePort(), sound: 'null' },
        emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}` } },
      },
    );
    socketPath = setup.socketPath;
    agent = await spawnAgent(setup);

    // A 911 call, answered and hung up: the phone now waits for the PSAP's callback.
    const psap = await startSipp({ scenario: PSAP, port: psapPort, timeoutSec: 20 });
    try {
      const r = await e911ctl(socketPath, 'dial', '911');
      expect(r.json.result).toMatchObject({ kind: 'emergency', placed: true });
      await waitFor(
        () => /ACK /.test(psap.messages()),
        10_000,
        () => psap.messages(),
      );
      await e911ctl(socketPath, 'hangup');
      expect((await psap.exited).code).toBe(0);
    } finally {
      await psap.close();
    }
    const status = await e911ctl(socketPath, 'status');
    expect(status.json.result.emergency.suppressedUntil).not.toBeNull();
  }, 40_000);

  afterAll(async () => {
    agent?.child.kill('SIGTERM');
    await agent?.exited;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Status codes the phone sent to the INVITE (100 Trying left out). */
  const inviteAnswers = (log: string) =>
    parseSippLog(log)
      .filter((m) => m.direction === 'received' && m.startLine.startsWith('SIP/2.0') && hdr(m, 'CSeq') === '1 INVITE')
      .map((m) => Number(m.startLine.split(' ')[1]))
      .filter((c) => c !== 100);

  const callback = (scenario: string, ip: string, port?: number) =>
    startSipp({
      scenario,
      remote: `127.0.0.1:${sipPort}`,
      service: 'phone',
      timeoutSec: 15,
      ...(port ? { port } : {}),
      keys: { psap_host: '127.0.0.1', psap_port: psapPort },
      // Later -i wins: the real address this SIPp sends from.
      extraArgs: ['-i', ip],
    });

  it('from another address with Via, From and Contact naming the PSAP: it rings, it is not answered', async () => {
    const spoof = await callback(RINGS, '127.0.0.2');
    try {
      const exit = await spoof.exited;
      expect(exit.code, `${spoof.messages()}\n${spoof.errors()}\n${agent.output().slice(-3000)}`).toBe(0);
      expect(inviteAnswers(spoof.messages())).toEqual([180, 487]);
      expect(agent.output()).not.toContain('PSAP callback answered');
    } finally {
      await spoof.close();
    }
  });

  it("the same call from the PSAP's address is answered at once", async () => {
    const real = await callback(ANSWERED, '127.0.0.1', psapPort);
    try {
      const exit = await real.exited;
      expect(exit.code, `${real.messages()}\n${real.errors()}`).toBe(0);
      expect(inviteAnswers(real.messages())).toEqual([200]);
      await waitFor(
        () => agent.output().includes('PSAP callback answered'),
        5000,
        () => agent.output().slice(-3000),
      );
    } finally {
      await real.close();
    }
  });
});
