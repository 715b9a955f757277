// The control socket's typed contract (agent/control/commands.ts) over a real Unix socket:
// every command's typed round trip, requests the server refuses before any handler runs,
// and an answer the client refuses because it does not fit the command's result schema.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_COMMANDS, type ControlArgs, type ControlCommand, type ControlResult } from '../../agent/control/commands.js';
import { askAgent, controlRequest, sendControlLine } from '../../agent/control/control-client.js';
import { ControlServer } from '../../agent/control/control-server.js';
import { ControlError } from '../../agent/errors.js';
import { silentLog } from '../helpers/log.js';

const civic = { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main St', HNO: '100', PC: '95110' };

/** One request and answer per command: a command added to the map without one here does not compile. */
const SAMPLES: { [C in ControlCommand]: { args: ControlArgs<C>; result: ControlResult<C> } } = {
  status: { args: {}, result: { deviceId: 'phone-1', store: { writes: 3 } } },
  address: {
    args: {},
    result: {
      version: 5,
      hash: 'abc',
      appliedAt: '2026-12-05T08:00:00.000Z',
      receivedAt: '2026-12-05T08:00:00.000Z',
      doc: {
        v: 1,
        deviceId: 'phone-1',
        version: 5,
        issuedAt: '2026-12-05T08:00:00.000Z',
        civic,
        callback: '+14085550100',
        displayName: 'Front Desk',
      },
    },
  },
  pidf: { args: {}, result: { pidf: '<presence/>', addressMissing: false } },
  dial: {
    args: { digits: '933' },
    result: { kind: 'test', placed: true, callRef: 'c-1', dialed: '933', route: 'primary', target: 'sip:933@psap', addressMissing: false },
  },
  hangup: { args: {}, result: { ended: 2 } },
  calls: {
    args: {},
    result: [
      { callRef: 'c-1', kind: 'test', dialed: '933', state: 'ended', startedAt: '2026-12-05T08:00:00.000Z', route: 'primary', media: null },
    ],
  },
  diag: { args: { noCall: true, keepCall: false, last: false }, result: null },
  location: {
    args: {},
    result: {
      status: 'pending',
      reason: 'no check yet',
      assigned: null,
      best: null,
      choices: [],
      selected: null,
      lastCheckAt: null,
      candidates: [
        {
          source: 'lldp-med',
          method: 'LLDP-MED',
          kind: 'civic',
          civic,
          dispatchable: true,
          origin: { port: 'ge-0/0/1' },
          rank: 3,
          ageMs: 1200,
        },
      ],
      elin: null,
      policy: 'network-first',
      disagreement: null,
    },
  },
  'location-select': { args: { id: 'loc-7' }, result: { locationId: 'loc-7', confirmed: false } },
  'location-use': { args: { which: 'network' }, result: { chosen: 'network', pick: 'network', policy: 'ask-user' } },
};

describe('control socket contract', () => {
  let dir: string;
  let socket: string;
  let server: ControlServer;
  const received: { cmd: string; args: unknown }[] = [];

  /** Registers every command with a handler that records its arguments and answers the sample. */
  function registerAll<C extends ControlCommand>(cmd: C): void {
    const sample = SAMPLES[cmd];
    server.register(cmd, (args) => {
      received.push({ cmd, args });
      return sample.result;
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-control-contract-'));
    socket = path.join(dir, 'control.sock');
    server = new ControlServer(socket, silentLog());
    for (const cmd of Object.keys(CONTROL_COMMANDS)) if (isCommand(cmd)) registerAll(cmd);
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const isCommand = (c: string): c is ControlCommand => c in SAMPLES;

  it('every command: typed arguments reach the handler as sent, its typed answer comes back whole', async () => {
    for (const cmd of Object.keys(SAMPLES)) {
      if (!isCommand(cmd)) continue;
      received.length = 0;
      const res = await roundTrip(socket, cmd);
      expect(res, cmd).toEqual({ ok: true, result: SAMPLES[cmd].result });
      expect(received, cmd).toEqual([{ cmd, args: SAMPLES[cmd].args }]);
    }
  });

  it('a malformed request is refused with bad-request and a message naming what is wrong; no handler runs', async () => {
    received.length = 0;
    const cases: [string, RegExp][] = [
      ['not json', /not JSON/],
      ['[1,2]', /bad request/],
      [JSON.stringify({ args: {} }), /cmd/],
      [JSON.stringify({ cmd: 7 }), /cmd/],
      [JSON.stringify({ cmd: 'dial', args: { digits: 911 } }), /bad arguments for dial: digits/],
      [JSON.stringify({ cmd: 'dial', args: {} }), /bad arguments for dial: digits/],
      [JSON.stringify({ cmd: 'dial', args: { digits: '911', force: true } }), /bad arguments for dial.*force/],
      [JSON.stringify({ cmd: 'location-use', args: { which: 'elsewhere' } }), /bad arguments for location-use: which/],
      [JSON.stringify({ cmd: 'diag', args: { noCall: 'yes' } }), /bad arguments for diag: noCall/],
      [JSON.stringify({ cmd: 'status', args: 'now' }), /bad arguments for status/],
    ];
    for (const [line, message] of cases) {
      const res = await sendControlLine(socket, line);
      expect(res, line).toMatchObject({ ok: false, code: 'bad-request', error: expect.stringMatching(message) });
    }
    expect(received).toEqual([]);
    expect(await sendControlLine(socket, JSON.stringify({ cmd: 'reboot' }))).toMatchObject({ ok: false, code: 'unknown-command' });
    // The server still answers a good request on the same socket path afterwards.
    expect(await controlRequest(socket, 'hangup')).toEqual({ ok: true, result: { ended: 2 } });
  });

  it('the client refuses an answer that does not fit the command (bad-answer), rather than typing it', async () => {
    const liar = path.join(dir, 'liar.sock');
    const conns = new Set<net.Socket>();
    const srv = net.createServer((s) => {
      conns.add(s);
      s.end(`${JSON.stringify({ ok: true, result: { ended: 'two' } })}\n`);
    });
    await new Promise<void>((r) => srv.listen(liar, () => r()));
    try {
      const err = await controlRequest(liar, 'hangup').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ControlError);
      expect(err).toMatchObject({ code: 'bad-answer', message: expect.stringContaining('result.ended') });
    } finally {
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

/** Sends a command with its sample arguments; generic so the answer is typed per command. */
function roundTrip<C extends ControlCommand>(socket: string, cmd: C) {
  return sendTyped(socket, cmd, SAMPLES[cmd].args);
}

function sendTyped<C extends ControlCommand>(socket: string, cmd: C, args: ControlArgs<C>) {
  return askAgent(socket, cmd, args);
}
