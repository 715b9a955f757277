// Parser benchmarks, each beside the hand-written parser it replaced, loaded from git
// (BENCH_PARSERS_BASELINE, default the last commit that had it) and run in the same process:
//  - parseXml on a typical HELD answer (civic + circle, by value) and on a PIDF-LO we build
//  - parseCsv on a bulk-import CSV of BENCH_CSV_ROWS rows (default 20,000)
//  - the agent's single-file bundle (minified, as scripts/build-arm.mjs builds it) with each XML reader
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { parseXml } from '../../provisioning/pidf/xml.js';
import { csvRecord, parseCsv } from '../../provisioning/server/csv.js';
import { buildPidf } from '../../provisioning/pidf/pidf.js';
import { sampleAddress } from '../../test/helpers/address.js';
import { report } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Run from scripts/bench (source) or dist/scripts/bench (compiled).
const repo = [path.resolve(here, '../..'), path.resolve(here, '../../..')].find((p) => existsSync(path.join(p, 'package.json')))!;
const BASELINE = process.env.BENCH_PARSERS_BASELINE ?? '4a48272';
const CSV_ROWS = Number(process.env.BENCH_CSV_ROWS ?? 20_000);

const scratch = mkdtempSync(path.join(os.tmpdir(), 'e911-bench-parsers-'));
const oldSource = (file: string): string => execFileSync('git', ['show', `${BASELINE}:${file}`], { cwd: repo, encoding: 'utf8' });
async function loadOld<T>(file: string): Promise<T> {
  const js = esbuild.transformSync(oldSource(file), { loader: 'ts', format: 'esm' }).code;
  const out = path.join(scratch, `${path.basename(file, '.ts')}.mjs`);
  writeFileSync(out, js);
  return (await import(pathToFileURL(out).href)) as T;
}

/** Median time of one call in µs: batches of `per` calls, new and old interleaved so noise hits both. */
function race(per: number, batches: number, a: () => void, b: () => void): [number, number] {
  const ta: number[] = [];
  const tb: number[] = [];
  for (let i = 0; i < batches + 5; i++) {
    for (const [f, into] of [
      [a, ta],
      [b, tb],
    ] as const) {
      const t0 = performance.now();
      for (let j = 0; j < per; j++) f();
      if (i >= 5) into.push(((performance.now() - t0) * 1000) / per); // first 5 warm up
    }
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  return [med(ta), med(tb)];
}

const HELD_ANSWER = `<?xml version="1.0"?>
<locationResponse xmlns="urn:ietf:params:xml:ns:geopriv:held">
  <locationUriSet expires="2026-12-01T00:00:00Z"><locationURI>https://lis.example.com:8222/lis/abc</locationURI></locationUriSet>
  <presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:3650n87934c@ls.example.com">
    <tuple id="b650sf789nd"><status>
      <geopriv xmlns="urn:ietf:params:xml:ns:pidf:geopriv10"><location-info>
        <c:civicAddress xmlns:c="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" xml:lang="en">
          <c:country>US</c:country><c:A1>TX</c:A1><c:A3>Austin</c:A3><c:RD>Congress</c:RD><c:STS>Ave</c:STS>
          <c:HNO>1100</c:HNO><c:PC>78701</c:PC><c:FLR>4 &amp; up</c:FLR>
        </c:civicAddress></location-info><method>Wiremap</method></geopriv>
    </status></tuple>
    <tuple id="x2"><status>
      <gp:geopriv xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0">
        <gp:location-info><gs:Circle srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>30.2747 -97.7404</gml:pos>
          <gs:radius uom="urn:ogc:def:uom:EPSG::9001">15</gs:radius></gs:Circle></gp:location-info>
        <gp:method>Wiremap</gp:method>
      </gp:geopriv>
    </status></tuple>
  </presence>
</locationResponse>`;

try {
  const old = await loadOld<{ parseXml: typeof parseXml }>('provisioning/pidf/xml.ts');
  const oldCsv = await loadOld<{ parseCsv: typeof parseCsv }>('provisioning/server/csv.ts');

  const [held, heldOld] = race(
    200,
    60,
    () => parseXml(HELD_ANSWER),
    () => old.parseXml(HELD_ANSWER),
  );
  report(`parse a HELD answer, ${HELD_ANSWER.length} chars (median)`, held, 'µs', heldOld, 'report only (baseline: hand-written reader)');

  const pidf = buildPidf(
    { civic: sampleAddress().civic, method: 'Manual' },
    {
      entity: 'tel:+14085550100',
      deviceId: 'mac:00d01e123456',
      providedBy: { name: 'Example Provisioning' },
      retransmissionAllowed: true,
      retentionHours: 24,
    },
    new Date('2026-11-22T07:00:00.000Z'),
  );
  const [lo, loOld] = race(
    200,
    60,
    () => parseXml(pidf),
    () => old.parseXml(pidf),
  );
  report(`parse a PIDF-LO, ${pidf.length} chars (median)`, lo, 'µs', loOld, 'report only (baseline: hand-written reader)');

  const rows = [csvRecord(['id', 'username', 'displayName', 'extension', 'locationCode', 'locationName', 'Email1', 'Email2'])];
  for (let i = 0; i < CSV_ROWS; i++)
    rows.push(
      csvRecord([i, `user${i}`, `User, "${i}"`, 10000 + i, 'HQ', 'Head office\nfloor 2', `user${i}@example.com`, 'desk@example.com']),
    );
  const csv = rows.join('');
  const [c, cOld] = race(
    1,
    7,
    () => parseCsv(csv),
    () => oldCsv.parseCsv(csv),
  );
  report(
    `parse a ${CSV_ROWS}-row CSV, ${(csv.length / 1024 / 1024).toFixed(1)} MiB (median of 7)`,
    c / 1000,
    'ms',
    cOld / 1000,
    'report only (baseline: hand-written reader)',
  );

  // The bundle as build-arm.mjs makes it (its addon-loader plugin aside: same for both).
  const opts: esbuild.BuildOptions = {
    entryPoints: [path.join(repo, 'agent/bundle/entry.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20.11',
    define: { 'import.meta.url': '__e911_bundle_url' },
    minify: true,
    keepNames: true,
    legalComments: 'none',
    write: false,
    logLevel: 'error',
    absWorkingDir: repo,
  };
  const oldXml = oldSource('provisioning/pidf/xml.ts');
  const withOld: esbuild.Plugin = {
    name: 'baseline-xml',
    setup: (b) => b.onLoad({ filter: /provisioning[\\/]pidf[\\/]xml\.ts$/ }, () => ({ contents: oldXml, loader: 'ts' })),
  };
  const size = async (plugins: esbuild.Plugin[]) => (await esbuild.build({ ...opts, plugins })).outputFiles![0]!.contents.length / 1024;
  report('agent bundle, minified', await size([]), 'KiB', await size([withOld]), 'report only (baseline: hand-written XML reader)');
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
