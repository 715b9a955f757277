// The console backend: keys typed into the terminal go through the whole MCU stack
// (in-process pipe) and come out as Handset key events; the screen is drawn to it.
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { ConsoleHandset } from '../../../hal/mcu/console/console-handset.js';
import { silentLog } from '../../helpers/log.js';

describe('console handset', () => {
  it('turns typed keys into key and hook events and draws what the agent shows', async () => {
    const input = new PassThrough() as unknown as NodeJS.ReadStream;
    const output = new PassThrough();
    let drawn = '';
    output.on('data', (d: Buffer) => (drawn += d.toString()));
    let quit = 0;
    const h = new ConsoleHandset({ log: silentLog(), agentVersion: 'test', input, output, onQuit: () => quit++ });
    const keys: string[] = [];
    const hooks: boolean[] = [];
    h.onKey((k) => keys.push(k));
    h.onHook((off) => hooks.push(off));
    await h.start();
    try {
      await vi.waitFor(() => expect(h.status()).toMatchObject({ connected: true, responsive: true, firmware: 'e911-sim 1' }));
      (input as unknown as PassThrough).write('h');
      (input as unknown as PassThrough).write('911');
      (input as unknown as PassThrough).write('\x1b[B'); // arrow down
      await vi.waitFor(() => expect(keys).toEqual(['9', '1', '1', 'down']));
      expect(hooks).toEqual([true]);
      h.show(['CALLING 911']);
      await vi.waitFor(() => expect(drawn).toContain('| CALLING 911'));
      expect(drawn).toContain('OFF-HOOK');
      (input as unknown as PassThrough).write('\x03');
      await vi.waitFor(() => expect(quit).toBe(1));
    } finally {
      await h.stop();
    }
  });
});
