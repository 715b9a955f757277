// The agent's control socket as the kernel enforces it: mode 0660, the agent's user as owner,
// control.group as group. Clients run as another user (setpriv, we are root in CI): without
// the group they are refused by the kernel, with it they are answered. A control.group that
// cannot be applied does not stop the socket (nor the agent): it stays the agent's own.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer } from '../../agent/control/control-server.js';
import { recordingLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';
import { agentConfig, inProcessAgent } from '../helpers/agent.js';
import { freePort } from '../helpers/ports.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import type { Agent } from '../../agent/root.js';
import { fileURLToPath } from 'node:url';

const gate = requires('control socket permissions', ['root']);

const SETPRIV = '/usr/bin/setpriv';
const NOBODY = 65534;
const GID = 4242;

const E911CTL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/agent/cli/e911ctl.js');

/** The real e911ctl (built) as uid/gid NOBODY with these supplementary groups: `status --json`. */
function e911ctlAs(socket: string, groups: number[]): Promise<{ code: number | null; out: string; err: string }> {
  const args = [
    '--reuid',
    String(NOBODY),
    '--regid',
    String(NOBODY),
    ...(groups.length ? ['--groups', groups.join(',')] : ['--clear-groups']),
    process.execPath,
    E911CTL,
    '--socket',
    socket,
    'status',
    '--json',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(SETPRIV, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

/** Connects as uid/gid NOBODY with these supplementary groups; the answer line, or the error code. */
function connectAs(socket: string, groups: number[]): Promise<string> {
  const code = `require('net').connect(${JSON.stringify(socket)})
    .on('connect', function () { this.write('{"cmd":"hangup"}\\n'); })
    .on('data', (d) => { process.stdout.write(String(d)); process.exit(0); })
    .on('error', (e) => { process.stdout.write(e.code); process.exit(1); });`;
  const args = [
    '--reuid',
    String(NOBODY),
    '--regid',
    String(NOBODY),
    ...(groups.length ? ['--groups', groups.join(',')] : ['--clear-groups']),
    process.execPath,
    '-e',
    code,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(SETPRIV, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', () => (out ? resolve(out.trim()) : reject(new Error(`client said nothing: ${err}`))));
  });
}

describe.skipIf(gate.skip)('agent control socket permissions', () => {
  let dir: string;
  let etcGroup: string;
  const servers: ControlServer[] = [];
  const agents: Agent[] = [];

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-control-'));
    // Others may walk to the socket: only its own mode decides who connects.
    chmodSync(dir, 0o755);
    etcGroup = path.join(dir, 'group');
    writeFileSync(etcGroup, `root:x:0:\ne911-agent:x:${GID}:\n`);
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (name: string, group?: string) => {
    const { log, lines } = recordingLog();
    const socket = path.join(dir, name, 'control.sock');
    const server = new ControlServer(socket, log, group ? { name: group, etcGroup } : undefined);
    server.register('hangup', () => ({ ended: 0 }));
    await server.start();
    servers.push(server);
    // The folder the agent makes is not world-readable; open it here so only the socket's mode is tested.
    chmodSync(path.dirname(socket), 0o755);
    return { socket, lines };
  };

  it("is 0660, owned by the agent's user, group control.group; the kernel answers group members only", async () => {
    const { socket } = await start('grouped', 'e911-agent');
    const st = statSync(socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.uid).toBe(process.getuid!());
    expect(st.gid).toBe(GID);
    expect(await connectAs(socket, [])).toBe('EACCES');
    expect(await connectAs(socket, [1234])).toBe('EACCES');
    expect(JSON.parse(await connectAs(socket, [GID]))).toEqual({ ok: true, result: { ended: 0 } });
  });

  it("without control.group: the agent's own group, others refused", async () => {
    const { socket } = await start('plain');
    const st = statSync(socket);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(process.getgid!());
    expect(await connectAs(socket, [])).toBe('EACCES');
    expect(await connectAs(socket, [GID])).toBe('EACCES');
  });

  it('a control.group that does not exist is logged, and the socket still starts, closed to others', async () => {
    const { socket, lines } = await start('unknown-group', 'no-such-group');
    const st = statSync(socket);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(process.getgid!());
    expect(lines().find((l) => l.level === 50)).toMatchObject({
      group: 'no-such-group',
      msg: expect.stringContaining('control.group not applied'),
    });
    expect(await connectAs(socket, [GID])).toBe('EACCES');
  });

  it('the real agent: e911ctl as a member of control.group gets the status, others cannot reach it; an unknown group does not stop the agent', async () => {
    const keys = generateSigningKeyPair();
    const run = async (name: string, group: string) => {
      // No broker listens here: the control socket needs none.
      const setup = agentConfig(
        path.join(dir, name),
        { deviceId: `phone-${name}`, brokerUrl: `mqtt://127.0.0.1:${await freePort()}`, serverPublicKey: keys.publicKey },
        { control: { socketPath: path.join(dir, name, 'run', 'control.sock'), group } },
      );
      const { agent } = inProcessAgent(setup);
      await agent.start();
      agents.push(agent);
      chmodSync(path.join(dir, name), 0o755);
      chmodSync(path.join(dir, name, 'run'), 0o755);
      return path.join(dir, name, 'run', 'control.sock');
    };
    const grouped = await run('agent-grouped', String(GID));
    expect(statSync(grouped).mode & 0o777).toBe(0o660);
    expect(statSync(grouped).gid).toBe(GID);
    const member = await e911ctlAs(grouped, [GID]);
    expect(member.code).toBe(0);
    expect(JSON.parse(member.out)).toMatchObject({ ok: true, result: { deviceId: 'phone-agent-grouped' } });
    const outsider = await e911ctlAs(grouped, []);
    expect(outsider.code).toBe(3); // agent unreachable
    expect(outsider.out + outsider.err).toMatch(/EACCES|permission/i);

    const unknown = await run('agent-unknown', 'no-such-group-e911');
    expect(statSync(unknown).mode & 0o777).toBe(0o660);
    expect(statSync(unknown).gid).toBe(process.getgid!());
    expect((await e911ctlAs(unknown, [GID])).code).toBe(3);
  });

  it('a numeric control.group is a gid', async () => {
    const { socket } = await start('numeric', String(GID));
    expect(statSync(socket).gid).toBe(GID);
    expect(JSON.parse(await connectAs(socket, [GID]))).toEqual({ ok: true, result: { ended: 0 } });
  });
});
