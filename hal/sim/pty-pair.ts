// A pseudo-terminal pair made by socat: one end for the simulated MCU, the other for
// the agent's serial backend, so the agent runs its real serialport code on a laptop.
// Stopping socat is what an unplugged MCU looks like to the agent (the port errors
// and closes); starting it again with the same paths is the MCU coming back.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export interface PtyPair {
  /** The MCU end (the simulator opens it). */
  readonly mcu: string;
  /** The agent end (handset.path / E911_MCU_PORT). */
  readonly agent: string;
  readonly running: boolean;
  stop(): Promise<void>;
  /** Starts socat again with the same paths (after stop()). */
  start(): Promise<void>;
}

export async function startPtyPair(dir: string, socat = 'socat'): Promise<PtyPair> {
  mkdirSync(dir, { recursive: true });
  const mcu = path.join(dir, 'mcu');
  const agent = path.join(dir, 'agent');
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const start = async (): Promise<void> => {
    if (child) return;
    output = '';
    const c = spawn(socat, ['-d', '-d', `pty,raw,echo=0,link=${mcu}`, `pty,raw,echo=0,link=${agent}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = c;
    c.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    const spawnError = new Promise<Error>((resolve) => c.once('error', resolve));
    const deadline = Date.now() + 5000;
    while (!(existsSync(mcu) && existsSync(agent))) {
      const err = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 10))]);
      if (err || c.exitCode !== null || Date.now() > deadline) {
        child = null;
        c.kill('SIGKILL');
        throw new Error(`socat did not make the pty pair: ${err?.message ?? output}`);
      }
    }
  };

  const pair: PtyPair = {
    mcu,
    agent,
    get running() {
      return child !== null;
    },
    start,
    stop: async () => {
      const c = child;
      child = null;
      if (!c) return;
      c.kill('SIGTERM');
      await exited;
    },
  };
  await start();
  return pair;
}
