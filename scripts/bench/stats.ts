// Small helpers every benchmark uses to print figures the same way. Under `npm run bench`
// each figure (and each latency figure's samples) is also appended, one JSON line each, to
// the file run.ts names in E911_BENCH_RESULTS: the run's JSON and plots are made from it.
import { appendFileSync } from 'node:fs';
import path from 'node:path';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summary(samples: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN };
}

/** One recorded figure, as the run's JSON file keeps it. */
export interface FigureRecord {
  kind: 'figure';
  bench: string;
  name: string;
  value: number;
  unit: string;
  baseline: number;
  goal: string;
}

/** The samples behind a latency figure, beside its baseline's: what the plots are drawn from. */
export interface SamplesRecord {
  kind: 'samples';
  bench: string;
  name: string;
  unit: string;
  agent: number[];
  baseline: number[];
  agentLabel: string;
  baselineLabel: string;
}

function record(r: Omit<FigureRecord, 'bench'> | Omit<SamplesRecord, 'bench'>, env: NodeJS.ProcessEnv = process.env): void {
  const file = env.E911_BENCH_RESULTS;
  if (!file) return;
  const bench = path.basename(process.argv[1] ?? '').replace(/\.bench\.js$/, '');
  appendFileSync(file, `${JSON.stringify({ bench, ...r })}\n`);
}

/** One line: the figure, its baseline measured in the same run, and the ratio or difference. */
export function report(name: string, value: number, unit: string, baseline: number, goal: string): void {
  const ratio = baseline === 0 ? NaN : value / baseline;
  process.stdout.write(
    `${name.padEnd(44)} ${value.toFixed(2).padStart(10)} ${unit.padEnd(6)} baseline ${baseline.toFixed(2).padStart(10)} ${unit.padEnd(6)} ` +
      `ratio ${ratio.toFixed(2).padStart(6)}  diff ${(value - baseline).toFixed(2).padStart(9)}  goal ${goal}\n`,
  );
  record({ kind: 'figure', name, value, unit, baseline, goal });
}

/** Keeps a latency figure's samples and its baseline's for the run's plot (docs/performance.md). */
export function samples(
  name: string,
  unit: string,
  agent: readonly number[],
  baseline: readonly number[],
  labels: { agent: string; baseline: string },
): void {
  const round = (xs: readonly number[]) => xs.map((x) => Math.round(x * 1000) / 1000);
  record({
    kind: 'samples',
    name,
    unit,
    agent: round(agent),
    baseline: round(baseline),
    agentLabel: labels.agent,
    baselineLabel: labels.baseline,
  });
}
