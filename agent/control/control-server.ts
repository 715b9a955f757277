// The agent's local control socket: newline-delimited JSON requests from e911ctl.
// A Unix socket made 0660: the agent's user, its group (control.group when set) and root;
// the kernel refuses anyone else. Born with that mode (umask around bind), so there is no
// moment when others could connect. A control.group that cannot be applied (unknown, or the
// agent may not chown to it) is logged and the socket stays the agent's own: e911ctl is
// not needed for 911, and a wrong setting must not stop the agent.
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../../provisioning/common/log.js';
import { ControlError } from '../errors.js';
import {
  CONTROL_COMMANDS,
  type ControlArgs,
  type ControlCommand,
  type ControlResponse,
  type ControlResult,
  controlRequestSchema,
  isControlCommand,
  issuesLine,
} from './commands.js';

/** A command's handler: its arguments already validated against the command's schema. */
export type ControlHandler<C extends ControlCommand> = (args: ControlArgs<C>) => ControlResult<C> | Promise<ControlResult<C>>;

const MAX_REQUEST_BYTES = 16 * 1024;

export class ControlServer {
  private server: net.Server | null = null;
  /** Each command's handler wrapped with its own args schema, so dispatch needs no per-command typing. */
  private readonly handlers = new Map<ControlCommand, (rawArgs: unknown) => Promise<ControlResponse<ControlCommand>>>();
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly socketPath: string,
    private readonly log: Logger,
    private readonly group?: { name: string; etcGroup: string },
  ) {}

  register<C extends ControlCommand>(cmd: C, handler: ControlHandler<C>): void {
    const schema = CONTROL_COMMANDS[cmd].args;
    this.handlers.set(cmd, async (rawArgs): Promise<ControlResponse<C>> => {
      const args = schema.safeParse(rawArgs);
      if (!args.success) return { ok: false, error: `bad arguments for ${cmd}: ${issuesLine(args.error)}`, code: 'bad-request' };
      try {
        return { ok: true, result: await handler(args.data) };
      } catch (err) {
        const e = err as Error & { code?: string };
        this.log.warn({ err: e.message, cmd }, 'control command failed');
        return { ok: false, error: e.message, ...(typeof e.code === 'string' ? { code: e.code } : {}) };
      }
    });
  }

  async start(): Promise<void> {
    mkdirSync(path.dirname(this.socketPath), { recursive: true, mode: 0o750 });
    rmSync(this.socketPath, { force: true }); // a stale socket from a killed agent
    const server = net.createServer((sock) => this.serve(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // bind() happens inside listen(), synchronously for a Unix socket: the umask set for
      // that call makes the socket 0660 from its first moment.
      withUmask(0o117, () => server.listen(this.socketPath, () => resolve()));
    });
    try {
      chmodSync(this.socketPath, 0o660);
    } catch (err) {
      // Not left half open: a socket with the wrong mode is closed, and start() may be tried again.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(this.socketPath, { force: true });
      throw err;
    }
    // An unusable group is logged, not fatal: e911ctl still works for root and the agent's user.
    if (this.group) this.applyGroup(this.group);
    server.on('error', (err) => this.log.error({ err }, 'control socket error'));
    this.server = server;
  }

  /** The socket's group; its owner stays the agent's user (root may give any group, others only their own). */
  private applyGroup(group: { name: string; etcGroup: string }): void {
    try {
      chownSync(this.socketPath, -1, groupId(group.name, group.etcGroup));
    } catch (err) {
      this.log.error(
        { err: (err as Error).message, group: group.name, socket: this.socketPath },
        "control.group not applied: e911ctl works for root and the agent's own user and group only",
      );
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  private serve(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.end(`${JSON.stringify({ ok: false, error: 'request too large', code: 'bad-request' })}\n`);
        return;
      }
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void this.answer(line).then((res) => sock.writable && sock.write(`${JSON.stringify(res)}\n`));
      }
    });
  }

  private async answer(line: string): Promise<ControlResponse<ControlCommand>> {
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      return { ok: false, error: 'request is not JSON', code: 'bad-request' };
    }
    const req = controlRequestSchema.safeParse(json);
    if (!req.success) return { ok: false, error: `bad request: ${issuesLine(req.error)}`, code: 'bad-request' };
    const { cmd, args } = req.data;
    if (!isControlCommand(cmd)) return { ok: false, error: `unknown command ${JSON.stringify(cmd)}`, code: 'unknown-command' };
    const run = this.handlers.get(cmd);
    if (!run) return { ok: false, error: `command ${cmd} is not available on this agent`, code: 'unknown-command' };
    return run(args ?? {});
  }
}

function groupId(name: string, etcGroup: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const line = readFileSync(etcGroup, 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  const gid = line?.split(':')[2];
  if (gid === undefined || !/^\d+$/.test(gid)) throw new ControlError('control-group', `control.group ${name} not found in ${etcGroup}`);
  return Number(gid);
}

/** Runs fn with this umask. Worker threads cannot change it: there the chmod right after is what holds. */
function withUmask(mask: number, fn: () => void): void {
  let old: number | null = null;
  try {
    old = process.umask(mask);
  } catch {
    old = null;
  }
  try {
    fn();
  } finally {
    if (old !== null) process.umask(old);
  }
}
