// Small helpers every benchmark uses to print figures the same way.
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summary(samples: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN };
}

/** One line: the figure, its baseline measured in the same run, and the ratio or difference. */
export function report(name: string, value: number, unit: string, baseline: number, goal: string): void {
  const ratio = baseline === 0 ? NaN : value / baseline;
  process.stdout.write(
    `${name.padEnd(44)} ${value.toFixed(2).padStart(10)} ${unit.padEnd(6)} baseline ${baseline.toFixed(2).padStart(10)} ${unit.padEnd(6)} ` +
      `ratio ${ratio.toFixed(2).padStart(6)}  diff ${(value - baseline).toFixed(2).padStart(9)}  goal ${goal}\n`,
  );
}
