import { describe, expect, it } from 'vitest';
import { HeldPoller, type HeldAnswer } from '../../../agent/location/held-poller.js';
import { answerHeld } from '../../../provisioning/server/held.js';
import { sampleAddress } from '../../helpers/address.js';
import { silentLog } from '../../helpers/log.js';
import { waitFor } from '../../helpers/agent.js';

const civic = sampleAddress().civic;
const elsewhere = { ...civic, ROOM: '999' };

describe('HeldPoller', () => {
  it('reports a new answer once, keeps it through transport errors, withdraws it when the LIS cannot locate', async () => {
    let mode: 'ok' | 'elsewhere' | 'down' | 'unknown' = 'ok';
    let calls = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    // While set, each request waits for the test to let it answer.
    let hold: Promise<void> | null = null;
    const fetchStub = (async (_url: string, init: { body: string }) => {
      calls++;
      const m = mode; // what the LIS knows when asked
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        if (hold) await hold;
        if (m === 'down') throw new Error('connect ECONNREFUSED');
        // The reference server's own HELD code answers: the same bytes a real LIS round trip gives.
        const r = await answerHeld(
          init.body,
          { ip: '10.0.0.5' },
          {
            providerName: 'test',
            locate: () =>
              m === 'unknown'
                ? null
                : { civic: m === 'elsewhere' ? elsewhere : civic, deviceUri: 'mac:020000000001', entity: 'tel:+14085550100' },
          },
        );
        return new Response(r.body, { status: r.status, headers: { 'content-type': 'application/held+xml' } });
      } finally {
        inFlight--;
      }
    }) as unknown as typeof fetch;
    const poller = new HeldPoller({
      url: 'http://lis.example/held',
      responseTimeMs: 500,
      refreshMs: 3_600_000,
      log: silentLog(),
      fetch: fetchStub,
    });
    const updates: (HeldAnswer | null)[] = [];
    poller.on('update', (a) => updates.push(a));
    const why = () =>
      `calls ${calls}, updates ${JSON.stringify(updates.map((u) => u?.civic?.ROOM ?? null))}, lastError ${JSON.stringify(poller.lastError)}`;

    poller.start();
    await waitFor(() => updates.length === 1, 5000, why);
    expect(updates[0]).toMatchObject({ civic, method: 'Manual', url: 'http://lis.example/held' });

    // The same answer again: no update. The marker is the next, different answer: requests
    // run one after another, so it arriving as the second update proves the first made none.
    poller.refresh();
    await waitFor(() => calls === 2, 5000, why);
    mode = 'elsewhere';
    poller.refresh();
    await waitFor(() => updates.length === 2, 5000, why);
    expect(calls).toBe(3);
    expect(updates[1]).toMatchObject({ civic: elsewhere });

    // A transport error keeps the answer; lastError is set when that request is done.
    mode = 'down';
    poller.refresh();
    await waitFor(() => poller.lastError?.code === 'network', 5000, why);
    expect(updates).toHaveLength(2);
    expect(poller.current()).toMatchObject({ civic: elsewhere });

    // Asked during a request: one more request after it, not two at once.
    mode = 'unknown';
    let release!: () => void;
    hold = new Promise<void>((r) => (release = r));
    poller.refresh();
    await waitFor(() => calls === 5, 5000, why);
    poller.refresh();
    poller.refresh();
    expect(calls).toBe(5);
    hold = null;
    release();
    await waitFor(() => calls === 6 && poller.lastError?.code === 'notLocatable', 5000, why);
    expect(updates.at(-1)).toBeNull();
    expect(poller.current()).toBeNull();
    // Marker: the next answer is the next request; had the two asks made two more, calls would be 8.
    mode = 'ok';
    poller.refresh();
    await waitFor(() => updates.length === 4, 5000, why);
    expect(calls).toBe(7);
    expect(maxInFlight).toBe(1);
    poller.stop();
  });
});
