// systemd notifications (READY, WATCHDOG, STOPPING) when NOTIFY_SOCKET is set.
// Node has no AF_UNIX datagram sockets, so the small unix-dgram addon sends them;
// without it the agent still runs and says once that systemd is not told.
import { createRequire } from 'node:module';
import type { Logger } from '../provisioning/common/log.js';

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', cb: (err: Error) => void): void;
}

export interface Notifier {
  ready(status?: string): void;
  stopping(): void;
  status(text: string): void;
  close(): void;
}

export function systemdNotifier(env: NodeJS.ProcessEnv, log: Logger, watchdogOverrideMs?: number): Notifier {
  const socketPath = env.NOTIFY_SOCKET;
  if (!socketPath) return { ready() {}, stopping() {}, status() {}, close() {} };
  // An abstract socket name starts with '@' in the variable and with NUL on the wire.
  const target = socketPath.startsWith('@') ? `\0${socketPath.slice(1)}` : socketPath;
  let sock: DgramSocket | null = null;
  try {
    const unixDgram = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): DgramSocket };
    sock = unixDgram.createSocket('unix_dgram');
    sock.on('error', (err) => log.warn({ err: err.message }, 'systemd notify failed'));
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'NOTIFY_SOCKET is set but unix-dgram is not available: systemd is not notified');
  }
  const send = (text: string) => {
    if (!sock) return;
    const buf = Buffer.from(text);
    sock.send(buf, 0, buf.length, target);
  };
  let watchdog: NodeJS.Timeout | null = null;
  const usec = Number(env.WATCHDOG_USEC);
  const pidOk = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
  const intervalMs = watchdogOverrideMs ?? (Number.isFinite(usec) && usec > 0 && pidOk ? Math.floor(usec / 2000) : 0);
  return {
    ready(status) {
      send(`READY=1\nMAINPID=${process.pid}${status ? `\nSTATUS=${status}` : ''}`);
      if (intervalMs > 0 && !watchdog) {
        // A timer keeps ticking only if the event loop does: that is what systemd should know.
        watchdog = setInterval(() => send('WATCHDOG=1'), intervalMs);
        watchdog.unref();
      }
    },
    stopping() {
      send('STOPPING=1');
    },
    status(text) {
      send(`STATUS=${text}`);
    },
    close() {
      if (watchdog) clearInterval(watchdog);
      watchdog = null;
      sock?.close();
      sock = null;
    },
  };
}
