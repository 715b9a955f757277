// Client side of the control socket, used by e911ctl and the tests.
import net from 'node:net';
import { ControlError } from '../errors.js';
import {
  CONTROL_COMMANDS,
  type ControlArgs,
  type ControlCommand,
  type ControlResponse,
  controlResponseSchema,
  issuesLine,
} from './commands.js';

/** Sends one command with no required arguments or with its arguments: `controlRequest(socket, 'status')`. */
export function controlRequest<C extends ControlCommand>(
  socketPath: string,
  cmd: C,
  ...[args, timeoutMs]: Record<string, never> extends ControlArgs<C>
    ? [args?: ControlArgs<C>, timeoutMs?: number]
    : [args: ControlArgs<C>, timeoutMs?: number]
): Promise<ControlResponse<C>> {
  return exchange(socketPath, cmd, args, timeoutMs).then((e) => e.response);
}

/**
 * Sends one command and checks the answer against the command's result schema: an answer
 * that does not fit is an error (code bad-answer), not a value of the wrong type.
 */
export async function askAgent<C extends ControlCommand>(
  socketPath: string,
  cmd: C,
  args: ControlArgs<C>,
  timeoutMs?: number,
): Promise<ControlResponse<C>> {
  return (await exchange(socketPath, cmd, args, timeoutMs)).response;
}

/** The checked answer, and the answer as the agent sent it (with any fields its schema does not name). */
export async function exchange<C extends ControlCommand>(
  socketPath: string,
  cmd: C,
  args: ControlArgs<C> | undefined,
  timeoutMs = 5000,
): Promise<{ response: ControlResponse<C>; sent: unknown }> {
  const sent = await sendControlLine(socketPath, JSON.stringify({ cmd, args: args ?? {} }), timeoutMs);
  const res = controlResponseSchema(cmd).safeParse(sent);
  if (!res.success) {
    // A union's error says only "Invalid input": a successful answer is checked again by its result schema to name the field.
    const ok = typeof sent === 'object' && sent !== null && 'ok' in sent && sent.ok === true && 'result' in sent;
    const detail = ok ? CONTROL_COMMANDS[cmd].result.safeParse(sent.result).error : undefined;
    const why = detail ? issuesLine(detail, 'result') : issuesLine(res.error);
    throw new ControlError('bad-answer', `the agent's answer to ${cmd} does not fit its schema: ${why}`);
  }
  return { response: res.data, sent };
}

/** One request line as is, its answer parsed as JSON but not checked: for tests of malformed requests. */
export function sendControlLine(socketPath: string, line: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ControlError('timeout', `no answer from the agent within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${line}\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)));
      } catch (err) {
        reject(new ControlError('bad-answer', `the agent's answer is not JSON: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
