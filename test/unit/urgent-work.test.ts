// The count of 911 work that bulk work gives way to (the pusher's locations lists).
import { describe, expect, it } from 'vitest';
import { UrgentWork } from '../../provisioning/server/urgent-work.js';

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('urgent work', () => {
  it('is busy while any run is under way, nested ones included, and a failed run still ends', async () => {
    const work = new UrgentWork();
    let endOuter!: () => void;
    const outer = work.run(() => new Promise<void>((r) => (endOuter = r)));
    expect(work.busy).toBe(true);
    await expect(work.run(async () => Promise.reject(new Error('store away')))).rejects.toThrow('store away');
    expect(work.busy).toBe(true);
    endOuter();
    await outer;
    expect(work.busy).toBe(false);
  });

  it('tells its listeners on a later turn, once, and not when urgent work began again meanwhile', async () => {
    const work = new UrgentWork();
    let told = 0;
    const remove = work.onIdle(() => told++);
    await work.run(async () => undefined);
    // Not inside the run's own settling: on a later turn.
    expect(told).toBe(0);
    await nextTurn();
    expect(told).toBe(1);

    // Idle for a moment, then busy again before the turn came: nobody is told.
    await work.run(async () => undefined);
    let endNext!: () => void;
    const next = work.run(() => new Promise<void>((r) => (endNext = r)));
    await nextTurn();
    expect(told).toBe(1);
    endNext();
    await next;
    await nextTurn();
    expect(told).toBe(2);

    remove();
    await work.run(async () => undefined);
    await nextTurn();
    expect(told).toBe(2);
  });
});
