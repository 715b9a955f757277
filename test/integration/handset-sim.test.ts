// The whole agent (dist/agent/main.js, its real serialport backend) with a simulated
// phone on a socat pty pair: the notice on the display and its acknowledgement at the
// server (Mosquitto), 911 typed on the keypad reaching a SIPp PSAP through the
// emergency path (PJSIP), the MCU line vanishing and coming back without losing keys,
// 933 and e911ctl diag. Also the diagnostics' OPTIONS ping against SIPp.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import mqtt from 'mqtt';
import { startPtyPair, type PtyPair } from '../../hal/sim/pty-pair.js';
import { McuSimulator } from '../../hal/sim/mcu-simulator.js';
import { nativePortFactory, SerialTransport } from '../../hal/mcu/transport/serial.js';
import { Store } from '../../agent/store/store.js';
import { controlRequest } from '../../agent/control/control-client.js';
import { sipOptionsPing } from '../../agent/diagnostics/sip-options.js';
import { documentHash, signDocument } from '../../provisioning/protocol/signing.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startSipp, type Sipp } from '../helpers/sip.js';
import { E911CTL, e911ctl, receivedInvites, silentUdp, staleBuild } from '../helpers/emergency.js';
import { freePort } from '../helpers/ports.js';
import { sampleAddress, testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';
import { statusPart } from '../helpers/control.js';
import { z } from 'zod';

const FIX = path.resolve(import.meta.dirname, '..', 'fixtures', 'diagnostics');
const ROUTE = path.join(FIX, 'route-psap.xml');
const OPTIONS_UAS = path.join(FIX, 'options-uas.xml');
const SOCAT = ['/usr/bin/socat', '/usr/local/bin/socat'].find((p) => existsSync(p));

const gate = requires('the handset simulator end-to-end tests', ['socat', 'broker']);
const calls = requires('the call parts of the handset simulator tests (911 and 933 through the emergency path)', ['voice', 'sipp']);
const optionsGate = requires('the diagnostics OPTIONS ping against SIPp', ['sipp']);
const stale = staleBuild([
  'agent/main.ts',
  'agent/root.ts',
  'agent/handset/front-panel.ts',
  'agent/handset/handset-ui.ts',
  'hal/mcu/mcu-handset.ts',
  'agent/cli/e911ctl.ts',
]);

describe.skipIf(gate.skip)('the whole agent with a simulated phone on a socat pty pair', () => {
  const keys = testKeys();
  let dir: string;
  let broker: Mosquitto;
  let sub: mqtt.MqttClient;
  const events: EventPayload[] = [];
  let pair: PtyPair;
  let sim: McuSimulator;
  let agent: AgentProcess;
  let socketPath: string;
  let routePort: number;

  const screen = () => sim.screen.lines.join('\n');
  const why = () =>
    `screen:\n${screen()}\nsim: ${JSON.stringify(sim.stats)} unacked ${sim.unacked} last received ${JSON.stringify(sim.received.slice(-8))}\nagent output:\n${agent?.output().slice(-4000)}`;
  const eventOf = async (type: string) => {
    await waitFor(
      () => events.some((e) => e.type === type),
      10_000,
      () => `no ${type} event; got ${events.map((e) => e.type).join(', ')}\n${why()}`,
    );
    return events.find((e) => e.type === type)!;
  };
  /** Scrolls the display down until `text` shows (or there is no more). */
  const handsetQueued = async () =>
    statusPart(await controlRequest(socketPath, 'status'), z.object({ handset: z.object({ queued: z.number() }) })).handset.queued;
  const scrollTo = async (text: string) => {
    const deadline = Date.now() + 10_000;
    // Shown on a row at some point while scrolling: a screen is drawn row by row, so a loaded
    // machine can press again before every row of the last screen has arrived.
    const shown = () => screen().includes(text) || sim.received.some((m) => m.type === 'display-line' && m.text.includes(text));
    while (!shown() && Date.now() < deadline) {
      const before = screen();
      sim.press('down');
      // One page at a time: the next press only once the agent has nothing left for the
      // display. Rows still queued when a new page comes are replaced, never drawn, and an
      // unchanged "v more" row is not sent again, so the screen alone cannot tell.
      await waitFor(() => screen() !== before, 3000, why);
      const until = Date.now() + 5000;
      while ((await handsetQueued()) !== 0) {
        if (Date.now() > until) throw new Error(`display frames never all acknowledged\n${why()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(shown(), `${text} never shown: ${why()}`).toBe(true);
  };

  beforeAll(async () => {
    if (stale) throw new Error(stale);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-handset-'));
    broker = await startMosquitto();
    sub = mqtt.connect(broker.url, { protocolVersion: 5 });
    sub.on('message', (_t, payload) => events.push(JSON.parse(payload.toString()) as EventPayload));
    await new Promise<void>((resolve, reject) => sub.subscribe('e911/v1/+/events', { qos: 1 }, (err) => (err ? reject(err) : resolve())));

    pair = await startPtyPair(path.join(dir, 'pty'), SOCAT);
    routePort = await freePort();
    const setup = agentConfig(
      path.join(dir, 'agent'),
      { deviceId: 'phone-1', brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
      {
        handset: { backend: 'serial', path: pair.agent },
        sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: await freePort(), rtpPort: await freePort(), sound: 'null' },
        emergency: { routes: { primary: `sip:127.0.0.1:${routePort}` } },
        diagnostics: { testCallTimeoutMs: 5000, optionsTimeoutMs: 1000, inventoryDelayMs: 0 },
      },
    );
    socketPath = setup.socketPath;
    // A signed address already on the phone, as after a push.
    const doc = sampleAddress({ deviceId: 'phone-1', version: 5 });
    const store = new Store({ dataDir: setup.raw.dataDir as string, log: silentLog() });
    store.applyAddress(
      { doc, version: doc.version, hash: documentHash(doc), signature: signDocument(doc, keys.privateKey), receivedAt: doc.issuedAt },
      { v: 1, id: 'seed-address', type: 'address-applied', deviceId: 'phone-1', ts: doc.issuedAt, data: {} },
    );
    store.close();

    const log = silentLog();
    sim = new McuSimulator({
      transport: new SerialTransport({
        path: pair.mcu,
        openPort: await nativePortFactory(pair.mcu, 115200),
        log,
        backoffMinMs: 20,
        backoffMaxMs: 200,
      }),
      log,
      rows: 4,
      cols: 24,
    });
    sim.start();
    agent = await spawnAgent(setup);
  }, 60_000);

  afterAll(async () => {
    if (agent) {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    await sim?.stop();
    await pair?.stop();
    sub?.end(true);
    await broker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the emergency-services notice with the address it sends; OK acknowledges it and the server hears of it', async () => {
    await waitFor(() => screen().includes('EMERGENCY 911 NOTICE'), 10_000, why);
    await waitFor(() => sim.screen.leds.alert?.mode === 'blink-slow', 5000, why);
    await scrollTo('100 Main St');
    await scrollTo('Callback +14085550100');
    const status = await e911ctl(socketPath, 'status');
    expect(status.json.result.notice).toMatchObject({ addressVersion: 5, acknowledgedAt: null });
    expect(status.json.result.handset).toMatchObject({
      backend: `serial:${pair.agent}`,
      connected: true,
      responsive: true,
      firmware: 'e911-sim 1',
    });

    sim.press('ok');
    const ev = await eventOf('notice-acknowledged');
    expect(ev.data).toMatchObject({ addressVersion: 5, acknowledgedVia: 'keypad' });
    // The idle screen is drawn row by row: wait for it, not for the first changed row.
    await waitFor(() => !screen().includes('NOTICE') && screen().includes('Front Desk'), 5000, why);
    await waitFor(() => sim.screen.leds.alert?.mode === 'off', 5000, why);
  });

  it.skipIf(calls.skip)('off-hook and 911 on the keypad: the call reaches the PSAP through the emergency path', async () => {
    const psap = await startSipp({ scenario: ROUTE, port: routePort, calls: 1, timeoutSec: 20 });
    try {
      sim.setHook(true);
      sim.type('911');
      await waitFor(
        () => /ACK /.test(psap.messages()),
        10_000,
        () => `no ACK at the PSAP\n${psap.messages()}\n${why()}`,
      );
      const invites = receivedInvites(psap.messages());
      expect(invites[0]!.startLine).toBe(`INVITE sip:911@127.0.0.1:${routePort} SIP/2.0`);
      expect(invites[0]!.raw).toContain('application/pidf+xml');
      await waitFor(() => screen().includes('CALLING 911'), 5000, why);
      expect((await eventOf('emergency-call')).data).toMatchObject({ numberDialed: '911', placed: true });
      sim.setHook(false); // hang up: BYE to the PSAP
      expect((await psap.exited).code).toBe(0);
    } finally {
      await psap.close();
    }
  });

  it('the MCU line vanishes and comes back: keys typed meanwhile arrive, none lost, nothing crashes', async () => {
    await waitFor(() => sim.unacked === 0, 5000, why); // the line is quiet
    await pair.stop(); // both ends see their pty die
    sim.type('45'); // typed while the line is gone: the MCU keeps them
    await waitFor(() => sim.unacked === 2, 5000, why);
    await pair.start();
    await waitFor(() => screen().includes('Dial: 45'), 10_000, why);
    // The display can draw the digits before the ACK of the last key frame is read back.
    await waitFor(
      () => sim.unacked === 0,
      5000,
      () => `key frames never acknowledged\n${why()}`,
    );
    sim.press('cancel');
    await waitFor(() => !screen().includes('Dial:'), 5000, why);
    const status = await e911ctl(socketPath, 'status');
    expect(status.json.result.handset.reopens).toBeGreaterThanOrEqual(1);
    expect(agent.child.exitCode).toBeNull();
    expect(agent.output()).toContain('serial port lost; reopening with backoff');
  });

  it('e911ctl diag: table and --json with scriptable exit codes, the report stored and at the server, the address read back on the display', async () => {
    const eventsBefore = events.filter((e) => e.type === 'diagnostics').length;
    let psap: Sipp | null = null;
    let r: Awaited<ReturnType<typeof e911ctl>>;
    if (!calls.skip) {
      psap = await startSipp({ scenario: ROUTE, port: routePort, calls: 2, timeoutSec: 20 }); // OPTIONS, then the 933 call
      r = await e911ctl(socketPath, 'diag');
    } else r = await e911ctl(socketPath, 'diag', '--no-call');
    await psap?.close();
    expect(r.json.ok, JSON.stringify(r.json)).toBe(true);
    const report = r.json.result as {
      overall: string;
      checks: { id: string; status: string; detail: string; remedy?: string }[];
      address: { lines: string[] };
    };
    const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
    expect(status, JSON.stringify(report.checks)).toMatchObject({
      address: 'pass',
      network: 'pass',
      handset: 'pass',
      'provisioning-link': 'pass',
    });
    if (!calls.skip) {
      expect(status).toMatchObject({ 'emergency-path': 'pass', 'emergency-routes': 'pass', 'test-call': 'pass' });
      expect(r.code).toBe(report.overall === 'pass' ? 0 : 4); // lldp, registration and clock may warn here; nothing fails
    } else {
      expect(status['emergency-path']).toBe('fail');
      expect(r.code).toBe(5);
    }
    for (const c of report.checks.filter((x) => x.status === 'fail' || x.status === 'warn')) expect(c.remedy, c.id).toBeTruthy();
    expect(report.address.lines).toContain('100 Main St');

    await waitFor(() => events.filter((e) => e.type === 'diagnostics').length > eventsBefore, 10_000, why);
    await waitFor(() => /933 TEST: /.test(screen()), 5000, why); // the result, not "checking"
    await scrollTo('100 Main St');
    sim.press('ok');
    await waitFor(() => !screen().includes('933 TEST'), 5000, why);

    const last = await e911ctl(socketPath, 'diag', '--last');
    expect(last.json.result.id).toBe((r.json.result as { id: string }).id);
    // The table for people, same exit code.
    const table = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, [E911CTL, '--socket', socketPath, 'diag', '--no-call'], { timeout: 15_000 }, (err, out) =>
        resolve({ code: err ? Number(err.code) : 0, out }),
      ),
    );
    expect(table.out).toMatch(/^CHECK\s+RESULT\s+DETAIL$/m);
    expect(table.out).toContain('Address this phone sends:');
    // Its exit code is its own report's verdict (stored: --last reads it back).
    const tableReport = (await e911ctl(socketPath, 'diag', '--last')).json.result as { id: string; overall: string };
    expect(tableReport.id).not.toBe(last.json.result.id);
    expect(table.code).toBe({ pass: 0, warn: 4, fail: 5 }[tableReport.overall]);
    const bad = await e911ctl(socketPath, 'diag', '--bogus');
    expect(bad.code).toBe(2);
    expect(bad.json).toMatchObject({ ok: false, code: 'usage' });
  });

  it.skipIf(calls.skip)('933 on the keypad: the test call goes out at once, then the checks, the result on the display', async () => {
    const psap = await startSipp({ scenario: ROUTE, port: routePort, calls: 2, timeoutSec: 20 }); // the 933 call, then OPTIONS
    try {
      sim.setHook(true);
      sim.type('933');
      await waitFor(
        () => receivedInvites(psap.messages()).length === 1,
        10_000,
        () => `no INVITE at the route\n${psap.messages()}\n${why()}`,
      );
      expect(receivedInvites(psap.messages())[0]!.startLine).toBe(`INVITE sip:933@127.0.0.1:${routePort} SIP/2.0`);
      await waitFor(() => /933 TEST: /.test(screen()), 15_000, why);
      await scrollTo('100 Main St'); // the address read back
      expect((await eventOf('test-call')).data).toMatchObject({ numberDialed: '933' });
      await waitFor(() => events.some((e) => e.type === 'diagnostics' && e.data.trigger === 'keypad'), 10_000, why);
      const diag = events.find((e) => e.type === 'diagnostics' && e.data.trigger === 'keypad')!;
      const testCall = (diag.data.checks as { id: string; status: string }[]).find((c) => c.id === 'test-call');
      expect(testCall?.status).toBe('pass');
      sim.setHook(false);
    } finally {
      await psap.close();
    }
  });

  it('reports the system inventory in status, gathered off the start-up path', async () => {
    let inv: { state: string; inventory?: { os: { platform: string }; cpu: { cores: number }; memory: { totalBytes: number } } } = {
      state: 'pending',
    };
    for (let i = 0; i < 100 && inv.state === 'pending'; i++) {
      inv = (await e911ctl(socketPath, 'status')).json.result.inventory;
      if (inv.state === 'pending') await new Promise((r) => setTimeout(r, 100));
    }
    expect(inv.state).toBe('ready');
    expect(inv.inventory!.os.platform).toBe('linux');
    expect(inv.inventory!.cpu.cores).toBeGreaterThan(0);
    expect(inv.inventory!.memory.totalBytes).toBeGreaterThan(0);
  });
});

describe.skipIf(optionsGate.skip)('diagnostics OPTIONS ping against SIPp', () => {
  it('a route that answers OPTIONS over UDP and TCP, and one that stays silent', async () => {
    for (const transport of ['u1', 't1'] as const) {
      const sipp = await startSipp({ scenario: OPTIONS_UAS, transport, calls: 1, timeoutSec: 10 });
      try {
        const r = await sipOptionsPing(`sip:127.0.0.1:${sipp.port}${transport === 't1' ? ';transport=tcp' : ''}`, 3000);
        expect(r, sipp.messages()).toEqual({ answered: true, code: 200, reason: 'OK' });
        expect(sipp.messages()).toMatch(/OPTIONS sip:127\.0\.0\.1:\d+ SIP\/2\.0/);
      } finally {
        await sipp.close();
      }
    }
    const port = await freePort();
    const silent = await silentUdp(port);
    try {
      expect(await sipOptionsPing(`sip:127.0.0.1:${port}`, 700)).toEqual({ answered: false, error: 'no answer within 700 ms (UDP)' });
      expect(silent.messages.some((m) => m.startsWith('OPTIONS '))).toBe(true);
    } finally {
      await silent.close();
    }
    const closed = await sipOptionsPing(`sip:127.0.0.1:${await freePort()};transport=tcp`, 700);
    expect(closed).toMatchObject({ answered: false, error: expect.stringContaining('ECONNREFUSED') });
  });
});
