// The emergency path wired in the composition root: the agent starts without a
// voice stack and says so; with one (the in-memory fake here) the control
// commands pidf, dial and hangup reach it, and the event lands in the outbox.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { BEGIN_FILE } from '../../agent/events/begin-file.js';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/root.js';
import { parseConfig } from '../../agent/config.js';
import { hostPaths } from '../../hal/host.js';
import { Store } from '../../agent/store/store.js';
import { controlRequest, sendControlLine } from '../../agent/control/control-client.js';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { documentHash, generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import type { AddressDocument } from '../../provisioning/protocol/address.js';
import { silentLog } from '../helpers/log.js';
import { unitAgentRaw } from '../helpers/agent.js';

const dirs: string[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(voice: MemoryVoiceStack | null, withAddress: boolean) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-emergency-agent-'));
  dirs.push(dir);
  const raw = unitAgentRaw(dir, generateSigningKeyPair().publicKey);
  if (withAddress) {
    const doc: AddressDocument = {
      v: 1,
      deviceId: 'phone-1',
      version: 2,
      issuedAt: '2026-11-22T07:00:00.000Z',
      civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', HNO: '100', PC: '95110' },
      callback: '+14085550100',
      displayName: 'Front Desk',
    };
    const s = new Store({ dataDir: raw.dataDir, log: silentLog() });
    s.applyAddress(
      { doc, version: 2, hash: documentHash(doc), signature: 'x', receivedAt: doc.issuedAt },
      { v: 1, id: 'seed', type: 'address-applied', deviceId: 'phone-1', ts: doc.issuedAt, data: {} },
    );
    s.close();
  }
  const agent = new Agent({ config: parseConfig(raw), log: silentLog(), env: {}, host: hostPaths({}), voice });
  agents.push(agent);
  return { agent, socket: raw.control.socketPath, dataDir: raw.dataDir };
}

describe('emergency path in the agent', () => {
  it('starts without a voice stack, and status says calls cannot be placed', async () => {
    const { agent, socket } = setup(null, true);
    await agent.start();
    expect(agent.status().emergency as Record<string, unknown>).toMatchObject({ canPlaceCalls: false });
    const r = await controlRequest(socket, 'dial', { digits: '911' });
    expect(r).toMatchObject({ ok: true, result: { kind: 'emergency', placed: false } });
  });

  it('pidf, dial and hangup over the control socket; the event is in the outbox', async () => {
    const voice = new MemoryVoiceStack();
    const { agent, socket } = setup(voice, true);
    await agent.start();
    const pidf = await controlRequest(socket, 'pidf');
    expect(pidf).toMatchObject({ ok: true, result: { addressMissing: false } });
    expect((pidf as { result: { pidf: string } }).result.pidf).toContain('<ca:RD>Main</ca:RD>');
    const dial = await controlRequest(socket, 'dial', { digits: '9911' });
    expect(dial).toMatchObject({
      ok: true,
      result: { kind: 'emergency', placed: true, route: 'primary', target: 'sip:911@10.0.0.1:5060' },
    });
    expect(voice.calls).toHaveLength(1);
    expect(await controlRequest(socket, 'hangup')).toMatchObject({ ok: true, result: { ended: 1 } });
    await new Promise((r) => setImmediate(r));
    const store = (agent as unknown as { parts: { store: Store } }).parts.store;
    const ev = store.pendingEvents(0, 100).find((e) => e.type === 'emergency-call');
    expect(ev).toBeDefined();
    expect(JSON.parse(ev!.payload).data).toMatchObject({ numberDialed: '9911', emergencyNumber: '911', addressMissing: false });
    expect(await sendControlLine(socket, JSON.stringify({ cmd: 'dial', args: {} }))).toMatchObject({ ok: false, code: 'bad-request' });
  });

  it('the event is in the begin file beside the store when the INVITE leaves; a new agent puts what a dead one left there into the outbox', async () => {
    const voice = new MemoryVoiceStack();
    const { agent, dataDir } = setup(voice, true);
    await agent.start();
    const file = path.join(dataDir, BEGIN_FILE);
    let atInvite = '';
    const make = voice.makeCall.bind(voice);
    voice.makeCall = (target, options) => {
      atInvite = readFileSync(file, 'utf8').replace(/\0/g, '');
      return make(target, options);
    };
    const svc = (agent as unknown as { core: { emergency: { dial(d: string): unknown } } }).core.emergency;
    expect(svc.dial('911')).toMatchObject({ kind: 'emergency', placed: true });
    const begun = JSON.parse(atInvite) as { id: string; type: string };
    expect(begun.type).toBe('emergency-call');
    // As if that agent had died before completing it: its line, in the data folder of a phone whose store never saw it.
    const next = setup(new MemoryVoiceStack(), false);
    mkdirSync(next.dataDir, { recursive: true });
    writeFileSync(path.join(next.dataDir, BEGIN_FILE), atInvite);
    const again = next.agent;
    await again.start();
    const store = (again as unknown as { parts: { store: Store } }).parts.store;
    expect(store.pendingEvents(0, 100).filter((e) => e.id === begun.id)).toHaveLength(1);
    expect(JSON.parse(store.pendingEvents(0, 100).find((e) => e.id === begun.id)!.payload)).toMatchObject({
      data: { recorded: 'before-invite' },
    });
    expect(readFileSync(path.join(next.dataDir, BEGIN_FILE), 'utf8').replace(/\0/g, '')).toBe('');
  });
});
