// The diagnostics report as people read it: a table for e911ctl, short lines for
// the phone's display (the address read back line by line, then what failed).
import type { DiagnosticsReport } from './types.js';

const MARK = { pass: 'ok', warn: 'WARN', fail: 'FAIL', skip: 'skip' } as const;

export function reportTable(r: DiagnosticsReport): string {
  const rows = r.checks.map((c) => [c.title, MARK[c.status], c.detail]);
  const w0 = Math.max(5, ...rows.map((x) => x[0]!.length));
  const w1 = 6;
  const out = [
    `933 diagnostics ${r.id} (${r.trigger}) ${r.startedAt}: ${r.overall.toUpperCase()}`,
    '',
    `${'CHECK'.padEnd(w0)}  ${'RESULT'.padEnd(w1)}  DETAIL`,
    ...rows.map(([a, b, c]) => `${a!.padEnd(w0)}  ${b!.padEnd(w1)}  ${c}`),
  ];
  const todo = r.checks.filter((c) => c.remedy && (c.status === 'fail' || c.status === 'warn'));
  if (todo.length > 0) {
    out.push('', 'What to do:');
    for (const c of todo) out.push(`  ${MARK[c.status]} ${c.title}: ${c.remedy}`);
  }
  out.push('', 'Address this phone sends:');
  if (r.address) {
    out.push(
      ...r.address.lines.map((l) => `  ${l}`),
      `  callback ${r.address.callback} (${r.address.displayName}), version ${r.address.version}`,
    );
  } else out.push('  none on file');
  return out.join('\n');
}

/** Lines for the phone's display; the screen manager wraps and scrolls them. */
export function reportDisplayLines(r: DiagnosticsReport): string[] {
  const failed = r.checks.filter((c) => c.status === 'fail');
  const warned = r.checks.filter((c) => c.status === 'warn');
  const head =
    r.overall === 'pass'
      ? '933 TEST: ALL OK'
      : r.overall === 'fail'
        ? `933 TEST: ${failed.length} FAILED`
        : `933 TEST: ${warned.length} WARNINGS`;
  const lines = [head, 'Address sent to 911:'];
  if (r.address) lines.push(...r.address.lines, `Callback ${r.address.callback}`);
  else lines.push('NONE ON FILE');
  for (const c of [...failed, ...warned]) {
    lines.push(`${MARK[c.status]} ${c.title}: ${c.detail}`);
    if (c.remedy) lines.push(`> ${c.remedy}`);
  }
  lines.push('Press OK to close');
  return lines;
}
