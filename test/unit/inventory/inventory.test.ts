// The system inventory: systeminformation really runs in a worker thread, as the agent
// runs it from npm (node_modules) and from the single executable (the package carried as a
// string, built here by build-arm's own function); the cache stays pending until its delay
// passes and never throws.
import { describe, expect, it, vi } from 'vitest';
import { gatherInWorker, InventoryCache, toInventory, type InventoryWorkerScript } from '../../../hal/inventory/inventory.js';
import { inventoryWorkerScript } from '../../../hal/inventory/inventory-worker-script.js';
// @ts-expect-error: a plain .mjs script without types
import { inventoryWorkerCode } from '../../../scripts/build-arm.mjs';
import { silentLog } from '../../helpers/log.js';

describe('system inventory', () => {
  const scripts: [string, () => Promise<InventoryWorkerScript>][] = [
    ['systeminformation from node_modules', async () => inventoryWorkerScript()],
    [
      'systeminformation carried as a string (the single executable)',
      async () => ({ kind: 'code', code: (await inventoryWorkerCode()) as string }),
    ],
  ];
  for (const [name, script] of scripts) {
    it(`gathers model, OS, CPU, memory and storage in a worker thread: ${name}`, async () => {
      const s = await script();
      if (s.kind === 'code') expect(s.code).not.toMatch(/require\(["']systeminformation/);
      const raw = await gatherInWorker(s);
      const inv = toInventory(raw, new Date(), 0);
      expect(inv.os.platform).toBe('linux');
      expect(inv.os.kernel).not.toBe('');
      expect(inv.cpu.cores).toBeGreaterThan(0);
      expect(inv.memory.totalBytes).toBeGreaterThan(0);
      expect(inv.storage.length).toBeGreaterThan(0);
      expect(inv.errors).toEqual({});
    }, 60_000);
  }

  it('a worker whose code cannot load fails the gathering with its error', async () => {
    await expect(gatherInWorker({ kind: 'module', from: 'file:///nonexistent/inventory.js' })).rejects.toThrow(/Cannot find module/);
  });

  it('reports a failed call by name instead of failing the whole inventory', () => {
    const inv = toInventory({ system: { error: 'dmidecode: permission denied' }, mem: { total: 1024, available: 512 } }, new Date(0), 3);
    expect(inv.errors).toEqual({ system: 'dmidecode: permission denied' });
    expect(inv.memory).toEqual({ totalBytes: 1024, availableBytes: 512 });
    expect(inv.model.model).toBe('');
  });

  it('stays pending until its delay, then caches; a failure is a state, not a crash', async () => {
    let calls = 0;
    const ok = new InventoryCache({
      log: silentLog(),
      delayMs: 20,
      gather: async () => {
        calls++;
        return { mem: { total: 1, available: 1 } };
      },
    });
    ok.start();
    expect(ok.current()).toEqual({ state: 'pending' });
    await vi.waitFor(() => expect(ok.current().state).toBe('ready'));
    expect(calls).toBe(1);
    const bad = new InventoryCache({ log: silentLog(), delayMs: 0, gather: async () => Promise.reject(new Error('worker died')) });
    expect(await bad.refresh()).toEqual({ state: 'failed', error: 'worker died' });
    bad.stop();
  });

  it('a failed gathering is tried again with backoff until it works', async () => {
    let calls = 0;
    const reported: string[] = [];
    const cache = new InventoryCache({
      log: silentLog(),
      delayMs: 0,
      retryMinMs: 10,
      retryMaxMs: 40,
      onFailure: (err) => reported.push(err.message),
      gather: async () => {
        calls++;
        if (calls <= 3) throw new Error(`worker died (${calls})`);
        return { mem: { total: 1, available: 1 } };
      },
    });
    cache.start();
    await vi.waitFor(() => expect(cache.current().state).toBe('ready'));
    expect(calls).toBe(4);
    expect(reported).toEqual(['worker died (1)', 'worker died (2)', 'worker died (3)']);
    cache.stop();
  });
});
