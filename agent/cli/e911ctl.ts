#!/usr/bin/env node
// e911ctl: the technician's view of the running agent, over its control socket.
// Exit codes: 0 ok, 1 the agent answered with an error, 2 usage, 3 agent unreachable,
// 4 diag found warnings (or skipped checks), 5 diag found failures. --json works with
// every command: the agent's whole answer on stdout, the exit code unchanged.
import { controlRequest } from '../control/control-client.js';
import { isMain } from '../../provisioning/common/is-main.js';
import { formatAddressLines, type AddressDocument } from '../../provisioning/protocol/address.js';
import { reportTable } from '../diagnostics/format.js';
import { locationListText } from './location-text.js';
import type { DiagnosticsReport } from '../diagnostics/types.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, warnings: 4, problems: 5 } as const;

type Formatter = (result: unknown) => string;

interface CommandSpec {
  /** Request sent to the agent, from the command-line words after the command. */
  request(args: string[]): { cmd: string; args: Record<string, unknown> } | string;
  text: Formatter;
  help: string;
  /** How long to wait for the agent (default 5 s). */
  timeoutMs?: number;
  /** Exit code for a successful answer, when the answer itself can be bad news. */
  exit?: (result: unknown) => number;
}

const kv = (obj: Record<string, unknown>, indent = ''): string =>
  Object.entries(obj)
    .map(([k, v]) =>
      v !== null && typeof v === 'object' && !Array.isArray(v)
        ? `${indent}${k}:\n${kv(v as Record<string, unknown>, `${indent}  `)}`
        : `${indent}${k}: ${Array.isArray(v) ? v.map((x) => (x !== null && typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : String(v)}`,
    )
    .join('\n');

interface CallSummary {
  callRef: string;
  kind: 'emergency' | 'test';
  dialed: string;
  state: string;
  startedAt: string;
  route: string | null;
  media: { rtpSent: number; rtpReceived: number; rtpLost: number; rtpLostByPeer: number; jitterMs: number; jitterMaxMs: number } | null;
}

/** One call: when, what, how it went, and its RTP figures once it has ended. */
export function callLine(c: CallSummary): string {
  const head = `${c.startedAt} ${c.kind === 'test' ? 'test' : 'EMERGENCY'} ${c.dialed} ${c.state}${c.route ? ` via ${c.route}` : ''}`;
  const m = c.media;
  if (!m) return `${head}; media: ${c.state === 'ended' ? 'none' : 'not yet (figures come when the call ends)'}`;
  return `${head}; RTP sent ${m.rtpSent}, received ${m.rtpReceived}, lost ${m.rtpLost} (peer lost ${m.rtpLostByPeer}), jitter ${m.jitterMs.toFixed(1)} ms (max ${m.jitterMaxMs.toFixed(1)})`;
}

export const COMMANDS: Record<string, CommandSpec> = {
  status: {
    help: 'link state, outbox backlog, store health',
    request: () => ({ cmd: 'status', args: {} }),
    text: (r) => kv(r as Record<string, unknown>),
  },
  address: {
    help: 'the applied dispatchable address and its version',
    request: () => ({ cmd: 'address', args: {} }),
    text: (r) => {
      const a = r as { version: number; appliedAt: string; doc: AddressDocument } | null;
      if (!a) return 'no address on file: 911 calls go to the fallback route without a location';
      return [
        `version ${a.version}, applied ${a.appliedAt}`,
        ...formatAddressLines(a.doc.civic).map((l) => `  ${l}`),
        `callback ${a.doc.callback}  (${a.doc.displayName})`,
      ].join('\n');
    },
  },
  pidf: {
    help: 'the PIDF-LO the phone would send with a 911 call now',
    request: () => ({ cmd: 'pidf', args: {} }),
    text: (r) => {
      const p = r as { pidf: string | null };
      return p.pidf ?? 'no address on file: a 911 call goes to the fallback route without a location';
    },
  },
  dial: {
    help: 'enter digits as if typed on the keypad (911, 933, 9911, ...) or a service URN',
    request: (args) =>
      args.length === 1 && args[0] ? { cmd: 'dial', args: { digits: args[0] } } : 'usage: e911ctl dial <digits|urn:service:sos>',
    text: (r) => {
      const o = r as {
        kind: string;
        placed?: boolean;
        route?: string;
        target?: string;
        error?: string;
        reason?: string;
        collected?: string;
        addressMissing?: boolean;
      };
      if (o.kind === 'pending') return `digits so far: ${o.collected} (waiting for more)`;
      if (o.kind === 'invalid') return `not dialed: ${o.reason}`;
      if (!o.placed) return `${o.kind} call NOT placed: ${o.error ?? o.reason}`;
      if (o.kind === 'ordinary') return `calling ${o.target}`;
      return `${o.kind === 'test' ? 'test' : 'EMERGENCY'} call placed on the ${o.route} route to ${o.target}${o.addressMissing ? ' (no address on file: no location sent)' : ''}`;
    },
  },
  diag: {
    help: '933 diagnostics: every check, then a test call [--no-call] [--keep-call] [--last]',
    timeoutMs: 120_000,
    request: (args) => {
      const known = ['--no-call', '--keep-call', '--last'];
      const bad = args.find((a) => !known.includes(a));
      if (bad) return `unknown option ${bad} (${known.join(', ')})`;
      return {
        cmd: 'diag',
        args: { noCall: args.includes('--no-call'), keepCall: args.includes('--keep-call'), last: args.includes('--last') },
      };
    },
    text: (r) => (r ? reportTable(r as DiagnosticsReport) : 'no diagnostics have run on this phone yet'),
    exit: (r) => {
      const overall = (r as DiagnosticsReport | null)?.overall;
      return overall === 'fail' ? EXIT.problems : overall === 'warn' ? EXIT.warnings : EXIT.ok;
    },
  },
  location: {
    help: 'where the phone is: "location list" (default: every candidate, ELIN, disagreement), "location select <id|code|current>", "location use network|provisioned" (ask-user policy)',
    request: (args) => {
      const [verb = 'list', id, ...extra] = args;
      if (verb === 'list' && id === undefined) return { cmd: 'location', args: {} };
      if (verb === 'select' && id && extra.length === 0) return { cmd: 'location-select', args: { id } };
      if (verb === 'use' && (id === 'network' || id === 'provisioned') && extra.length === 0)
        return { cmd: 'location-use', args: { which: id } };
      return 'usage: e911ctl location [list] | location select <id|code|current> | location use network|provisioned';
    },
    text: (r) => {
      const o = r as Parameters<typeof locationListText>[0] & {
        locationId?: string;
        confirmed?: boolean;
        pick?: string;
        chosen?: string | null;
      };
      if (o.locationId !== undefined)
        return `${o.confirmed ? 'confirmed' : 'selected'} ${o.locationId}: the server will make it your address`;
      if (o.pick !== undefined) return `picked the ${o.pick} address: a 911 call sends ${o.chosen ?? 'neither'} first`;
      return locationListText(o);
    },
  },
  calls: {
    help: 'the last emergency and test calls, with their media figures (RTP sent, received, lost; jitter)',
    request: () => ({ cmd: 'calls', args: {} }),
    text: (r) => {
      const calls = r as CallSummary[];
      if (calls.length === 0) return 'no emergency or test calls since the agent started';
      return calls.map(callLine).join('\n');
    },
  },
  hangup: {
    help: 'end every call',
    request: () => ({ cmd: 'hangup', args: {} }),
    text: (r) => `ended ${(r as { ended: number }).ended} call(s)`,
  },
};

export async function main(
  argv: string[],
  env: NodeJS.ProcessEnv,
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const json = argv.includes('--json');
  let socketPath = env.E911_CONTROL_SOCKET ?? '/run/e911-agent/control.sock';
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') continue;
    if (a === '--socket') socketPath = argv[++i] ?? socketPath;
    else words.push(a);
  }
  const [name, ...rest] = words;
  const spec = name ? COMMANDS[name] : undefined;
  if (!spec) {
    if (json) out.write(`${JSON.stringify({ ok: false, error: name ? `unknown command ${name}` : 'no command', code: 'usage' })}\n`);
    err.write(
      `usage: e911ctl [--json] [--socket PATH] <command>\n${Object.entries(COMMANDS)
        .map(([n, c]) => `  ${n.padEnd(10)} ${c.help}`)
        .join('\n')}\n`,
    );
    return EXIT.usage;
  }
  const req = spec.request(rest);
  if (typeof req === 'string') {
    if (json) out.write(`${JSON.stringify({ ok: false, error: req, code: 'usage' })}\n`);
    err.write(`e911ctl ${name}: ${req}\n`);
    return EXIT.usage;
  }
  let res: Awaited<ReturnType<typeof controlRequest>>;
  try {
    res = await controlRequest(socketPath, req.cmd, req.args, spec.timeoutMs);
  } catch (e) {
    const msg = `cannot reach the agent at ${socketPath}: ${(e as Error).message}`;
    if (json) out.write(`${JSON.stringify({ ok: false, error: msg })}\n`);
    else err.write(`e911ctl: ${msg}\n`);
    return EXIT.unreachable;
  }
  if (json) out.write(`${JSON.stringify(res, null, 2)}\n`);
  else if (res.ok) out.write(`${spec.text(res.result)}\n`);
  else err.write(`e911ctl ${name}: ${res.error}\n`);
  if (!res.ok) return EXIT.failed;
  return spec.exit ? spec.exit(res.result) : EXIT.ok;
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2), process.env).then((code) => process.exit(code));
}
