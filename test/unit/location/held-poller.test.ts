import { describe, expect, it } from 'vitest';
import { HeldPoller, type HeldAnswer } from '../../../agent/location/held-poller.js';
import { answerHeld } from '../../../provisioning/server/held.js';
import { sampleAddress } from '../../helpers/address.js';
import { silentLog } from '../../helpers/log.js';

const civic = sampleAddress().civic;

describe('HeldPoller', () => {
  it('reports a new answer once, keeps it through transport errors, withdraws it when the LIS cannot locate', async () => {
    let mode: 'ok' | 'down' | 'unknown' = 'ok';
    let calls = 0;
    const fetchStub = (async (_url: string, init: { body: string }) => {
      calls++;
      if (mode === 'down') throw new Error('connect ECONNREFUSED');
      // The reference server's own HELD code answers: the same bytes a real LIS round trip gives.
      const r = await answerHeld(init.body, { ip: '10.0.0.5' }, {
        providerName: 'test',
        locate: () => (mode === 'ok' ? { civic, deviceUri: 'mac:020000000001', entity: 'tel:+14085550100' } : null),
      });
      return new Response(r.body, { status: r.status, headers: { 'content-type': 'application/held+xml' } });
    }) as unknown as typeof fetch;
    const poller = new HeldPoller({ url: 'http://lis.example/held', responseTimeMs: 500, refreshMs: 3_600_000, log: silentLog(), fetch: fetchStub });
    const updates: (HeldAnswer | null)[] = [];
    poller.on('update', (a) => updates.push(a));
    const settle = () => new Promise((r) => setTimeout(r, 30));

    poller.start();
    await settle();
    expect(updates).toHaveLength(1);
    expect(updates[0]).toMatchObject({ civic, method: 'Manual', url: 'http://lis.example/held' });

    poller.refresh(); // same answer: no update
    await settle();
    expect(updates).toHaveLength(1);

    mode = 'down';
    poller.refresh();
    await settle();
    expect(updates).toHaveLength(1);
    expect(poller.current()).not.toBeNull();
    expect(poller.lastError).toMatchObject({ code: 'network' });

    mode = 'unknown';
    poller.refresh();
    poller.refresh(); // asked during a request: one more request after it, not two at once
    await settle();
    expect(updates.at(-1)).toBeNull();
    expect(poller.current()).toBeNull();
    expect(calls).toBe(5);
    poller.stop();
  });
});
