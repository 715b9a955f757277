import { describe, expect, it } from 'vitest';
import {
  ScalePlanError,
  eventSchedule,
  openFilesLimit,
  parseProcStatCpu,
  phoneId,
  phonePassword,
  sourceAddress,
  splitPhones,
} from '../../scripts/bench/scale-plan.js';

describe('scale bench plan', () => {
  it('splits phones over workers contiguously, every phone once, sizes within one', () => {
    for (const [n, parts] of [
      [100_000, 7],
      [10, 3],
      [2, 4],
      [0, 2],
    ] as const) {
      const s = splitPhones(n, parts);
      expect(s).toHaveLength(parts);
      expect(s[0]!.from).toBe(0);
      expect(s.at(-1)!.to).toBe(n);
      for (let k = 1; k < s.length; k++) expect(s[k]!.from).toBe(s[k - 1]!.to);
      const sizes = s.map((x) => x.to - x.from);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
    expect(() => splitPhones(10, 0)).toThrow(ScalePlanError);
  });

  it('puts no more than perAddress phones on one source address, from 127.0.0.2 on', () => {
    const per = 20_000;
    const count = new Map<string, number>();
    for (let i = 0; i < 100_000; i++) count.set(sourceAddress(i, per), (count.get(sourceAddress(i, per)) ?? 0) + 1);
    expect([...count.keys()]).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']);
    expect(Math.max(...count.values())).toBe(per);
    expect(() => sourceAddress(253 * per, per)).toThrow(ScalePlanError);
  });

  it('derives distinct, stable passwords and sortable ids', () => {
    expect(phoneId(42)).toBe('sim-000042');
    expect(phonePassword('s', 'sim-000001')).toBe(phonePassword('s', 'sim-000001'));
    expect(phonePassword('s', 'sim-000001')).not.toBe(phonePassword('s', 'sim-000002'));
    expect(phonePassword('s', 'sim-000001')).not.toBe(phonePassword('t', 'sim-000001'));
  });

  it('spaces events evenly at the rate', () => {
    expect(eventSchedule(4, 1)).toEqual([0, 250, 500, 750]);
    expect(eventSchedule(20, 15)).toHaveLength(300);
    expect(() => eventSchedule(0, 5)).toThrow(ScalePlanError);
  });

  it('reads CPU seconds from /proc/<pid>/stat, command names with spaces and parentheses included', () => {
    const stat = '1234 (node (worker) 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 100 1000 200';
    expect(parseProcStatCpu(stat)).toBe(3);
    expect(() => parseProcStatCpu('garbage')).toThrow(ScalePlanError);
  });

  it('reads the soft open-files limit', () => {
    const limits =
      'Max cpu time              unlimited            unlimited            seconds\nMax open files            20000                20000                files\n';
    expect(openFilesLimit(limits)).toBe(20_000);
    expect(() => openFilesLimit('')).toThrow(ScalePlanError);
  });
});
