// npm run bench: runs every scripts/bench/*.bench.ts (compiled) in turn, each in its
// own process so one's heap and timers never colour another's figures.
//   npm run bench -- link             only the benchmarks whose file name contains "link"
//   npm run bench -- scale            100,000 simulated phones (scale.bench.ts): only when named,
//                                     never in a plain `npm run bench` (minutes, 200,000 sockets)
//   npm run bench -- --out FILE       where the run's JSON goes (default build/bench/<time>.json;
//                                     build/bench/latest.json is a copy)
//   npm run bench -- --compare FILE   afterwards, each figure's change against that earlier run
//   npm run bench -- --compare A --against B   only compare two earlier runs, run nothing
//   npm run bench -- --plots DIR      one SVG per latency figure (default build/bench/plots;
//                                     docs/performance.md shows docs/perf/)
//   npm run bench -- --replot FILE    only draw an earlier run's plots again (into --plots DIR)
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchResultsError, compare, gather, parseResult, plotFileName, plotSvg, type RunResult } from './results.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');

function options(argv: string[]): {
  filters: string[];
  out: string | null;
  compare: string | null;
  against: string | null;
  replot: string | null;
  plots: string;
} {
  const o = {
    filters: [] as string[],
    out: null as string | null,
    compare: null as string | null,
    against: null as string | null,
    replot: null as string | null,
    plots: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new BenchResultsError(`${a} needs a value`);
      return path.resolve(v);
    };
    if (a === '--out') o.out = value();
    else if (a === '--compare') o.compare = value();
    else if (a === '--against') o.against = value();
    else if (a === '--plots') o.plots = value();
    else if (a === '--replot') o.replot = value();
    else o.filters.push(a);
  }
  return { ...o, plots: o.plots || path.join(repo, 'build/bench/plots') };
}

const opts = options(process.argv.slice(2));
if (opts.compare && opts.against) {
  const before = parseResult(readFileSync(opts.compare, 'utf8'), opts.compare);
  const now = parseResult(readFileSync(opts.against, 'utf8'), opts.against);
  process.stdout.write(compare(before, now));
  process.exit(0);
}

function writePlots(result: RunResult, dir: string): void {
  if (result.samples.length === 0) return;
  mkdirSync(dir, { recursive: true });
  for (const s of result.samples) writeFileSync(path.join(dir, plotFileName(s)), plotSvg(s, result.at));
  process.stdout.write(`${result.samples.length} plots written to ${dir}\n`);
}
if (opts.replot) {
  writePlots(parseResult(readFileSync(opts.replot, 'utf8'), opts.replot), opts.plots);
  process.exit(0);
}

const ONLY_WHEN_NAMED = ['scale.bench.js'];
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => (opts.filters.length === 0 ? !ONLY_WHEN_NAMED.includes(f) : opts.filters.some((x) => f.includes(x))))
  .sort();
const at = new Date().toISOString();
const outDir = path.join(repo, 'build/bench');
mkdirSync(outDir, { recursive: true });
const lines = path.join(outDir, `.records-${process.pid}.jsonl`);
writeFileSync(lines, '');
let failed = 0;
for (const f of files) {
  process.stdout.write(`\n=== ${f.replace(/\.bench\.js$/, '')} ===\n`);
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(here, f)], {
    stdio: 'inherit',
    env: { ...process.env, E911_BENCH_RESULTS: lines },
  });
  if (r.status !== 0) {
    failed++;
    process.stdout.write(`!!! ${f} exited with ${r.status ?? r.signal}\n`);
  }
}
const result = gather(readFileSync(lines, 'utf8'), {
  at,
  node: process.version,
  arch: process.arch,
  cpus: os.cpus().length,
  benches: files.map((f) => f.replace(/\.bench\.js$/, '')),
});
rmSync(lines, { force: true });
const out = opts.out ?? path.join(outDir, `${at.replace(/[:.]/g, '-')}.json`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 1)}\n`);
copyFileSync(out, path.join(outDir, 'latest.json'));
process.stdout.write(`\n${result.figures.length} figures written to ${out}\n`);
writePlots(result, opts.plots);
if (opts.compare) process.stdout.write(`\n${compare(parseResult(readFileSync(opts.compare, 'utf8'), opts.compare), result)}`);
process.exit(failed > 0 ? 1 : 0);
