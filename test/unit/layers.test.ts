// The layers, enforced (docs/architecture.md): every import of every source file
// is read, and an arrow that goes the wrong way, or a cycle, fails here with the
// file and the import that breaks it.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/bundle.js';

interface Arrow {
  from: string;
  to: string;
  typeOnly: boolean;
}

const SOURCE = /^(agent|hal|provisioning|scripts)\/.*\.(ts|tsx|mts)$/;
const IMPORT =
  /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'"]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sourceFiles(): string[] {
  return execFileSync('git', ['ls-files'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => SOURCE.test(f) && !f.endsWith('.d.ts') && !f.endsWith('.d.mts'));
}

/** The repository file an import names (.js in the source stands for .ts or .tsx). */
function resolve(from: string, spec: string, files: Set<string>): string | null {
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  const base = target.replace(/\.(m?js)$/, '');
  for (const candidate of [target, `${base}.ts`, `${base}.tsx`, `${base}.mts`, `${target}/index.ts`])
    if (files.has(candidate)) return candidate;
  return null;
}

function arrows(): Arrow[] {
  const files = sourceFiles();
  const known = new Set(files);
  const out: Arrow[] = [];
  for (const from of files) {
    const text = readFileSync(path.join(REPO_ROOT, from), 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[3] ?? m[4]!;
      const to = resolve(from, spec, known);
      if (to) out.push({ from, to, typeOnly: m[2] !== undefined });
    }
  }
  return out;
}

const all = arrows();
const under = (dir: string) => (f: string) => f.startsWith(`${dir}/`);
const broken = (rule: (a: Arrow) => boolean) => all.filter(rule).map((a) => `${a.from} -> ${a.to}`);

describe('the layers', () => {
  it('finds the imports it checks (a reader that found none would pass anything)', () => {
    expect(all.length).toBeGreaterThan(300);
    expect(all).toContainEqual({ from: 'agent/root.ts', to: 'agent/store/store.ts', typeOnly: false });
  });

  it('hal/ imports nothing of ours above it', () => {
    expect(broken((a) => under('hal')(a.from) && !under('hal')(a.to))).toEqual([]);
  });

  it('the server and the agent do not import each other', () => {
    expect(broken((a) => under('provisioning')(a.from) && under('agent')(a.to))).toEqual([]);
    expect(broken((a) => under('agent')(a.from) && under('provisioning/server')(a.to))).toEqual([]);
  });

  it('what both ends share (protocol, common, pidf) imports neither end', () => {
    const shared = (f: string) => ['provisioning/protocol', 'provisioning/common', 'provisioning/pidf'].some((d) => under(d)(f));
    expect(broken((a) => shared(a.from) && (under('agent')(a.to) || under('provisioning/server')(a.to) || under('hal')(a.to)))).toEqual([]);
  });

  it('the portal imports only types from the server', () => {
    const portal = under('provisioning/server/portal/web');
    expect(broken((a) => portal(a.from) && under('provisioning/server')(a.to) && !portal(a.to) && !a.typeOnly)).toEqual([]);
  });

  it('no import cycles, type-only imports included', () => {
    const graph = new Map<string, string[]>();
    for (const a of all) graph.set(a.from, [...(graph.get(a.from) ?? []), a.to]);
    // Tarjan's strongly connected components: any with two files or more is a cycle.
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    const visit = (v: string) => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
      if (low.get(v) === idx.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1) cycles.push(scc.sort());
      }
    };
    for (const v of graph.keys()) if (!idx.has(v)) visit(v);
    expect(cycles).toEqual([]);
  });
});
