// The bench's own record keeping: figures and samples appended by each benchmark become one
// run's JSON; a later run is compared figure by figure (and by its ratio to the same run's
// baseline); each latency figure gets an SVG of both distributions.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BenchResultsError, compare, gather, plotFileName, plotSvg, type RunResult } from '../../scripts/bench/results.js';
import { report, samples } from '../../scripts/bench/stats.js';

const meta = { at: '2026-12-05T08:00:00.000Z', node: 'v20.20.2', arch: 'x64', cpus: 2, benches: ['foundation'] };

describe('bench results', () => {
  let dir = '';
  const saved = process.env.E911_BENCH_RESULTS;
  afterEach(() => {
    if (saved === undefined) delete process.env.E911_BENCH_RESULTS;
    else process.env.E911_BENCH_RESULTS = saved;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every reported figure with its baseline, and the samples behind a latency figure', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-bench-results-'));
    const file = path.join(dir, 'records.jsonl');
    process.env.E911_BENCH_RESULTS = file;
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      report('push->applied p99', 9.5, 'ms', 4.8, '<= 2x baseline');
      samples('push->applied', 'ms', [1.23456, 2], [0.5], { agent: 'agent', baseline: 'echo' });
    } finally {
      process.stdout.write = write;
    }
    const r = gather(readFileSync(file, 'utf8'), meta);
    expect(r.figures).toEqual([
      { bench: expect.any(String), name: 'push->applied p99', value: 9.5, unit: 'ms', baseline: 4.8, goal: '<= 2x baseline' },
    ]);
    expect(r.samples[0]).toMatchObject({ name: 'push->applied', agent: [1.235, 2], baseline: [0.5], agentLabel: 'agent' });
  });

  it('refuses a records file that is not one JSON object a line', () => {
    expect(() => gather('{"kind":"figure"}\nnot json\n', meta)).toThrow(BenchResultsError);
  });

  it('prints each figure against the earlier run, with the ratio to its baseline before and now', () => {
    const fig = (name: string, value: number, baseline: number) => ({ bench: 'foundation', name, value, unit: 'ms', baseline, goal: '-' });
    const before: RunResult = { ...meta, figures: [fig('start->ready', 312, 109), fig('gone', 1, 1)], samples: [] };
    const now: RunResult = {
      ...meta,
      at: '2026-12-06T00:00:00.000Z',
      figures: [fig('start->ready', 156, 104), fig('new one', 2, 1)],
      samples: [],
    };
    const text = compare(before, now);
    const line = text.split('\n').find((l) => l.includes('start->ready'))!;
    expect(line).toMatch(/312\.00\s+156\.00 ms\s+-50\.0%\s+2\.86 -> 1\.50/);
    expect(text).toMatch(/new one\s+\(new\)/);
    expect(text).toMatch(/gone\s+1\.00\s+\(gone\)/);
  });

  it('draws both distributions on one axis, with their p50 and p99 in the legend', () => {
    const svg = plotSvg(
      {
        bench: 'network',
        name: 'change->report',
        unit: 'ms',
        agent: [12, 10, 11, 30],
        baseline: [8, 7, 9, 12],
        agentLabel: 'change to report',
        baselineLabel: 'change to netlink event',
      },
      meta.at,
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg).toContain('change to report: p50 11.0, p99 30.0 (n 4)');
    expect(svg).toContain('change to netlink event: p50 8.00, p99 12.0 (n 4)');
    expect(svg).toContain('change-&gt;report');
    expect(plotFileName({ bench: 'network', name: 'change->report' })).toBe('network-change-to-report.svg');
  });
});
