// Bundles a TypeScript entry into one ESM file inside the repo (.run/, ignored by
// git) so a test can run it as a separate process, e.g. inside a network
// namespace with `ip netns exec`. Packages stay external and resolve from the repo.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '../..');

export async function bundleEntry(entry: string, name: string): Promise<string> {
  const outDir = path.join(REPO_ROOT, '.run', 'bundles');
  mkdirSync(outDir, { recursive: true });
  const outfile = path.join(outDir, `${name}-${process.pid}.mjs`);
  await build({
    entryPoints: [path.resolve(REPO_ROOT, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile,
    logLevel: 'error',
  });
  process.once('exit', () => rmSync(outfile, { force: true }));
  return outfile;
}
