// Builds the admin portal (provisioning/server/portal/web) into dist/portal:
// one ES module bundle (Preact and the pages), one stylesheet, the page shell.
// The server serves that folder; run by `npm run build`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const web = path.join(root, 'provisioning/server/portal/web');
const out = path.join(root, 'dist/portal');
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [path.join(web, 'main.tsx')],
  outfile: path.join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  // Browsers of the last few years: no transpiling of what they already run.
  target: ['chrome100', 'firefox100', 'safari15', 'edge100'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
});
copyFileSync(path.join(web, 'index.html'), path.join(out, 'index.html'));

const size = (f) => {
  const buf = readFileSync(path.join(out, f));
  return `${f} ${(statSync(path.join(out, f)).size / 1024).toFixed(1)} KiB (${(gzipSync(buf).length / 1024).toFixed(1)} KiB gzip)`;
};
console.log(`portal: ${size('app.js')}, ${size('app.css')}`);
