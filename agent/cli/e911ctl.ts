#!/usr/bin/env node
// e911ctl: the technician's view of the running agent, over its control socket.
// Exit codes: 0 ok, 1 the agent answered with an error, 2 usage, 3 agent unreachable,
// 4 diag found warnings (or skipped checks), 5 diag found failures. --json works with
// every command: the agent's whole answer on stdout, the exit code unchanged.
import { exchange } from '../control/control-client.js';
import type { ControlArgs, ControlCommand, ControlResponse, ControlResult } from '../control/commands.js';
import { isMain } from '../../provisioning/common/is-main.js';
import { formatAddressLines } from '../../provisioning/protocol/address.js';
import { reportTable } from '../diagnostics/format.js';
import { locationListText } from './location-text.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, warnings: 4, problems: 5 } as const;

/** What one command line asks the agent, with how to show its typed answer. */
interface Ask {
  send(socketPath: string, timeoutMs?: number): Promise<Answered>;
}
interface Answered {
  response: ControlResponse<ControlCommand>;
  /** The answer as the agent sent it: what --json prints. */
  sent: unknown;
  /** The answer as text, when it succeeded. */
  text: string | null;
  exit: number;
}

/** One control command, its arguments and its formatter, typed together by the command map. */
function ask<C extends ControlCommand>(
  cmd: C,
  args: ControlArgs<C>,
  text: (result: ControlResult<C>) => string,
  exit: (result: ControlResult<C>) => number = () => EXIT.ok,
): Ask {
  return {
    async send(socketPath, timeoutMs) {
      const { response, sent } = await exchange(socketPath, cmd, args, timeoutMs);
      return response.ok
        ? { response, sent, text: text(response.result), exit: exit(response.result) }
        : { response, sent, text: null, exit: EXIT.failed };
    },
  };
}

interface CommandSpec {
  /** Request sent to the agent, from the command-line words after the command; a string is a usage error. */
  request(args: string[]): Ask | string;
  help: string;
  /** How long to wait for the agent (default 5 s). */
  timeoutMs?: number;
}

const kv = (obj: Record<string, unknown>, indent = ''): string =>
  Object.entries(obj)
    .map(([k, v]) =>
      isRecord(v)
        ? `${indent}${k}:\n${kv(v, `${indent}  `)}`
        : `${indent}${k}: ${Array.isArray(v) ? v.map((x) => (x !== null && typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : String(v)}`,
    )
    .join('\n');

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

type CallSummary = ControlResult<'calls'>[number];

/** One call: when, what, how it went, and its RTP figures once it has ended. */
export function callLine(c: CallSummary): string {
  const head = `${c.startedAt} ${c.kind === 'test' ? 'test' : 'EMERGENCY'} ${c.dialed} ${c.state}${c.route ? ` via ${c.route}` : ''}`;
  const m = c.media;
  if (!m) return `${head}; media: ${c.state === 'ended' ? 'none' : 'not yet (figures come when the call ends)'}`;
  return `${head}; RTP sent ${m.rtpSent}, received ${m.rtpReceived}, lost ${m.rtpLost} (peer lost ${m.rtpLostByPeer}), jitter ${m.jitterMs.toFixed(1)} ms (max ${m.jitterMaxMs.toFixed(1)})`;
}

export function callsText(calls: readonly CallSummary[]): string {
  return calls.length === 0 ? 'no emergency or test calls since the agent started' : calls.map(callLine).join('\n');
}

function dialText(o: ControlResult<'dial'>): string {
  switch (o.kind) {
    case 'pending':
      return `digits so far: ${o.collected} (waiting for more)`;
    case 'invalid':
      return `not dialed: ${o.reason}`;
    case 'ordinary':
      return o.placed ? `calling ${o.target}` : `ordinary call NOT placed: ${o.reason}`;
  }
  if (!o.placed) return `${o.kind} call NOT placed: ${o.error}`;
  return `${o.kind === 'test' ? 'test' : 'EMERGENCY'} call placed on the ${o.route} route to ${o.target}${o.addressMissing ? ' (no address on file: no location sent)' : ''}`;
}

export const COMMANDS: Record<string, CommandSpec> = {
  status: {
    help: 'link state, outbox backlog, store health',
    request: () => ask('status', {}, (r) => kv(r)),
  },
  address: {
    help: 'the applied dispatchable address and its version',
    request: () =>
      ask('address', {}, (a) => {
        if (!a) return 'no address on file: 911 calls go to the fallback route without a location';
        return [
          `version ${a.version}, applied ${a.appliedAt}`,
          ...formatAddressLines(a.doc.civic).map((l) => `  ${l}`),
          `callback ${a.doc.callback}  (${a.doc.displayName})`,
        ].join('\n');
      }),
  },
  pidf: {
    help: 'the PIDF-LO the phone would send with a 911 call now',
    request: () => ask('pidf', {}, (p) => p.pidf ?? 'no address on file: a 911 call goes to the fallback route without a location'),
  },
  dial: {
    help: 'enter digits as if typed on the keypad (911, 933, 9911, ...) or a service URN',
    request: (args) =>
      args.length === 1 && args[0] ? ask('dial', { digits: args[0] }, dialText) : 'usage: e911ctl dial <digits|urn:service:sos>',
  },
  diag: {
    help: '933 diagnostics: every check, then a test call [--no-call] [--keep-call] [--last]',
    timeoutMs: 120_000,
    request: (args) => {
      const known = ['--no-call', '--keep-call', '--last'];
      const bad = args.find((a) => !known.includes(a));
      if (bad) return `unknown option ${bad} (${known.join(', ')})`;
      return ask(
        'diag',
        { noCall: args.includes('--no-call'), keepCall: args.includes('--keep-call'), last: args.includes('--last') },
        (r) => (r ? reportTable(r) : 'no diagnostics have run on this phone yet'),
        (r) => (r?.overall === 'fail' ? EXIT.problems : r?.overall === 'warn' ? EXIT.warnings : EXIT.ok),
      );
    },
  },
  location: {
    help: 'where the phone is: "location list" (default: every candidate, ELIN, disagreement), "location select <id|code|current>", "location use network|provisioned" (ask-user policy)',
    request: (args) => {
      const [verb = 'list', id, ...extra] = args;
      if (verb === 'list' && id === undefined) return ask('location', {}, locationListText);
      if (verb === 'select' && id && extra.length === 0)
        return ask(
          'location-select',
          { id },
          (o) => `${o.confirmed ? 'confirmed' : 'selected'} ${o.locationId}: the server will make it your address`,
        );
      if (verb === 'use' && (id === 'network' || id === 'provisioned') && extra.length === 0)
        return ask('location-use', { which: id }, (o) => `picked the ${o.pick} address: a 911 call sends ${o.chosen ?? 'neither'} first`);
      return 'usage: e911ctl location [list] | location select <id|code|current> | location use network|provisioned';
    },
  },
  calls: {
    help: 'the last emergency and test calls, with their media figures (RTP sent, received, lost; jitter)',
    request: () => ask('calls', {}, callsText),
  },
  hangup: {
    help: 'end every call',
    request: () => ask('hangup', {}, (r) => `ended ${r.ended} call(s)`),
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
  let answered: Answered;
  try {
    answered = await req.send(socketPath, spec.timeoutMs);
  } catch (e) {
    const msg = `cannot reach the agent at ${socketPath}: ${e instanceof Error ? e.message : String(e)}`;
    if (json) out.write(`${JSON.stringify({ ok: false, error: msg })}\n`);
    else err.write(`e911ctl: ${msg}\n`);
    return EXIT.unreachable;
  }
  const res = answered.response;
  if (json) out.write(`${JSON.stringify(answered.sent, null, 2)}\n`);
  else if (answered.text !== null) out.write(`${answered.text}\n`);
  else if (!res.ok) err.write(`e911ctl ${name}: ${res.error}\n`);
  return answered.exit;
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2), process.env).then((code) => process.exit(code));
}
