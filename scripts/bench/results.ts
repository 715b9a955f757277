// A bench run's figures as one JSON file, the change against an earlier run, and one
// SVG plot per latency figure (the agent's distribution beside its baseline's), drawn
// from the run's own samples with a few lines of SVG: no plotting library.
import { E911Error } from '../../provisioning/common/errors.js';
import type { FigureRecord, SamplesRecord } from './stats.js';
import { percentile } from './stats.js';

export interface RunResult {
  /** ISO time the run started. */
  at: string;
  node: string;
  arch: string;
  cpus: number;
  benches: string[];
  figures: Omit<FigureRecord, 'kind'>[];
  samples: Omit<SamplesRecord, 'kind'>[];
}

export class BenchResultsError extends E911Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super('bench-results', message, options);
  }
}

/** The run's records (one JSON object a line, as stats.ts appends them) gathered into one result. */
export function gather(lines: string, meta: Omit<RunResult, 'figures' | 'samples'>): RunResult {
  const figures: RunResult['figures'] = [];
  const samples: RunResult['samples'] = [];
  for (const [i, line] of lines.split('\n').entries()) {
    if (line.trim() === '') continue;
    let r: FigureRecord | SamplesRecord;
    try {
      r = JSON.parse(line) as FigureRecord | SamplesRecord;
    } catch (err) {
      throw new BenchResultsError(`bench results line ${i + 1} is not JSON`, { cause: err });
    }
    const { kind, ...rest } = r;
    if (kind === 'figure') figures.push(rest as Omit<FigureRecord, 'kind'>);
    else if (kind === 'samples') samples.push(rest as Omit<SamplesRecord, 'kind'>);
    else throw new BenchResultsError(`bench results line ${i + 1}: unknown kind ${String(kind)}`);
  }
  return { ...meta, figures, samples };
}

export function parseResult(text: string, file: string): RunResult {
  let r: RunResult;
  try {
    r = JSON.parse(text) as RunResult;
  } catch (err) {
    throw new BenchResultsError(`${file} is not JSON`, { cause: err });
  }
  if (!Array.isArray(r.figures)) throw new BenchResultsError(`${file} is not a bench result (no figures)`);
  return r;
}

const key = (f: { bench: string; name: string }) => `${f.bench}\u0000${f.name}`;
const num = (x: number, w = 10) => (Number.isFinite(x) ? x.toFixed(2) : '-').padStart(w);

/**
 * The change of every figure against an earlier run. The machine is shared and noisy, so the
 * ratio to the baseline measured in the same run is compared too: a change in the figure
 * that its baseline shows as well is the machine, not the agent.
 */
export function compare(before: RunResult, now: RunResult): string {
  const old = new Map(before.figures.map((f) => [key(f), f]));
  const out = [`against the run of ${before.at} (node ${before.node}, ${before.arch}):`];
  out.push(`${'figure'.padEnd(52)} ${'before'.padStart(10)} ${'now'.padStart(10)} unit    change   ratio to baseline before -> now`);
  for (const f of now.figures) {
    const b = old.get(key(f));
    old.delete(key(f));
    const name = `${f.bench}: ${f.name}`.slice(0, 52).padEnd(52);
    if (!b) {
      out.push(`${name} ${'(new)'.padStart(10)} ${num(f.value)} ${f.unit.padEnd(6)}`);
      continue;
    }
    const change = b.value === 0 ? NaN : ((f.value - b.value) / b.value) * 100;
    const r0 = b.baseline === 0 ? NaN : b.value / b.baseline;
    const r1 = f.baseline === 0 ? NaN : f.value / f.baseline;
    out.push(
      `${name} ${num(b.value)} ${num(f.value)} ${f.unit.padEnd(6)} ${Number.isFinite(change) ? `${change >= 0 ? '+' : ''}${change.toFixed(1)}%`.padStart(8) : '       -'}   ${num(r0, 6)} -> ${num(r1, 6).trim()}`,
    );
  }
  for (const b of old.values()) out.push(`${`${b.bench}: ${b.name}`.slice(0, 52).padEnd(52)} ${num(b.value)} ${'(gone)'.padStart(10)}`);
  return `${out.join('\n')}\n`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The two distributions as empirical CDFs on one axis (x: the figure, y: the share of
 * samples at or below it), with their p50 and p99 marked: the agent's beside its baseline's.
 */
export function plotSvg(s: Omit<SamplesRecord, 'kind'>, at: string): string {
  const W = 640;
  const H = 320;
  const L = 56;
  const R = 16;
  const T = 40;
  const B = 48;
  const series = [
    { label: s.agentLabel, xs: [...s.agent].sort((a, b) => a - b), colour: '#c0392b' },
    { label: s.baselineLabel, xs: [...s.baseline].sort((a, b) => a - b), colour: '#2c3e50' },
  ];
  const all = series.flatMap((x) => x.xs);
  const max = all.length > 0 ? Math.max(...all) : 1;
  const xMax = niceCeil(max > 0 ? max : 1);
  const r1 = (v: number) => Math.round(v * 10) / 10;
  const x = (v: number) => r1(L + (v / xMax) * (W - L - R));
  const y = (p: number) => r1(T + (1 - p) * (H - T - B));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${L}" y="16" font-size="13">${esc(s.name)} (${esc(s.unit)}), ${esc(s.bench)} bench, ${esc(at.slice(0, 10))}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = (xMax * i) / 5;
    parts.push(
      `<line x1="${x(v)}" y1="${y(0)}" x2="${x(v)}" y2="${y(1)}" stroke="#eee"/>`,
      `<text x="${x(v)}" y="${y(0) + 14}" text-anchor="middle">${fmt(v)}</text>`,
    );
  }
  for (const p of [0, 0.5, 0.99, 1]) {
    parts.push(
      `<line x1="${L}" y1="${y(p)}" x2="${W - R}" y2="${y(p)}" stroke="#eee"/>`,
      `<text x="${L - 4}" y="${y(p) + 4}" text-anchor="end">${p === 0.99 ? 'p99' : p === 0.5 ? 'p50' : p}</text>`,
    );
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">${esc(s.unit)} (share of samples at or below)</text>`);
  series.forEach((ser, k) => {
    if (ser.xs.length === 0) return;
    const n = ser.xs.length;
    let d = `M${x(ser.xs[0]!)},${y(0)}`;
    ser.xs.forEach((v, i) => {
      d += ` L${x(v)},${y(i / n)} L${x(v)},${y((i + 1) / n)}`;
    });
    const p50 = percentile(ser.xs, 50);
    const p99 = percentile(ser.xs, 99);
    parts.push(
      `<path d="${d}" fill="none" stroke="${ser.colour}" stroke-width="1.5"/>`,
      `<circle cx="${x(p50)}" cy="${y(0.5)}" r="3" fill="${ser.colour}"/>`,
      `<circle cx="${x(p99)}" cy="${y(0.99)}" r="3" fill="${ser.colour}"/>`,
      `<rect x="${W - R - 250}" y="${T + 6 + k * 16}" width="10" height="3" fill="${ser.colour}"/>`,
      `<text x="${W - R - 236}" y="${T + 10 + k * 16}">${esc(ser.label)}: p50 ${fmt(p50)}, p99 ${fmt(p99)} (n ${n})</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** A file name for a figure's plot: its bench and name, lower case, dashes. */
export function plotFileName(s: { bench: string; name: string }): string {
  return `${s.bench}-${s.name}`
    .toLowerCase()
    .replace(/->/g, '-to-')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .concat('.svg');
}
