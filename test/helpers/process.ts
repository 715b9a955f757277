// Stopping a child the tests started: SIGTERM, SIGKILL if it lingers, wait for its exit.
import type { ChildProcess } from 'node:child_process';

export async function stopProcess(child: ChildProcess | null | undefined, killAfterMs = 2000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(timer);
}
