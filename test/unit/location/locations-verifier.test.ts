// The locations worker thread: its protocol (answers by id, in order), its
// verdicts, and what happens when it fails (to load, out of memory, closed).
// The worker runs as the agent runs it: from a file (dist/) and from a code
// string (the single-executable ARM bundle, built here the way build-arm does).
import path from 'node:path';
import { build } from 'esbuild';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LocationsVerifierError, WorkerLocationsVerifier, type WorkerScript } from '../../../agent/location/locations-verifier.js';
import type { VerifiedLocations } from '../../../agent/location/locations-verify.js';
import { CompactLocationsBuilder, partText } from '../../../agent/location/locations-view.js';
import type { LocationsDocument, RecommendedLocation } from '../../../provisioning/protocol/locations.js';
import { signDocument } from '../../../provisioning/protocol/signing.js';
import { sampleAddress, testKeys } from '../../helpers/address.js';
import { bundleEntry, REPO_ROOT } from '../../helpers/bundle.js';
import type { Logger } from 'pino';
import { recordingLog, silentLog } from '../../helpers/log.js';

const keys = testKeys();
const loc = (i: number): RecommendedLocation => ({
  id: `loc-${i}`,
  code: `C${i}`,
  name: `Location ${i}`,
  civic: { ...sampleAddress().civic, ROOM: String(i) },
  cidrs: [`10.${(i >> 8) & 255}.${i & 255}.0/24`],
});
const doc = (version: number, n = 1, over: Partial<LocationsDocument> = {}): LocationsDocument => ({
  v: 1,
  deviceId: 'phone-1',
  version,
  issuedAt: '2026-11-22T07:00:00Z',
  recommendations: true,
  assignedLocationId: null,
  locations: Array.from({ length: n }, (_, i) => loc(i)),
  ...over,
});
const push = (d: LocationsDocument, k = keys) => Buffer.from(JSON.stringify({ v: 1, doc: d, sig: signDocument(d, k.privateKey) }));

let fileScript: WorkerScript;
let codeScript: WorkerScript;
const open: WorkerLocationsVerifier[] = [];
function verifier(script: WorkerScript | (() => WorkerScript), maxHeapMb?: number, o: { idleMs?: number; log?: Logger } = {}) {
  const v = new WorkerLocationsVerifier({
    script,
    deviceId: 'phone-1',
    serverPublicKey: keys.pair.publicKey,
    log: o.log ?? silentLog(),
    ...(maxHeapMb ? { maxHeapMb } : {}),
    ...(o.idleMs !== undefined ? { idleMs: o.idleMs } : {}),
  });
  open.push(v);
  return v;
}

beforeAll(async () => {
  fileScript = { kind: 'file', url: await bundleEntry('agent/location/locations-worker.ts', 'locations-worker') };
  // As scripts/build-arm.mjs carries it: one CommonJS string, every package inside, built-ins only outside.
  const out = await build({
    entryPoints: [path.join(REPO_ROOT, 'agent/location/locations-worker.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20.11',
    minify: true,
    write: false,
    logLevel: 'error',
  });
  codeScript = { kind: 'code', code: out.outputFiles[0]!.text };
}, 60_000);

afterEach(async () => {
  for (const v of open.splice(0)) await v.close();
});

describe('the locations worker', () => {
  for (const kind of ['file', 'code'] as const) {
    it(`verifies in a worker thread loaded from a ${kind}: applies, unchanged, forged, malformed, wrong device, too large`, async () => {
      const v = verifier(kind === 'file' ? fileScript : codeScript);
      const ok = (await v.verify(push(doc(3, 600)), null)) as Extract<VerifiedLocations, { result: 'apply' }>;
      expect(v.running).toBe(true);
      expect(ok).toMatchObject({ ok: true, result: 'apply', version: 3, count: 600, head: { version: 3, deviceId: 'phone-1' } });
      expect(ok.parts.flatMap((p) => JSON.parse(partText(p)) as unknown[])).toEqual(doc(3, 600).locations);
      // The main thread neither parses nor compiles the parts: they come as bytes (one moved buffer, off
      // its heap) with their matcher index, which answers as the index built from the parts here.
      expect(ok.parts.every((p) => p instanceof Uint8Array)).toBe(true);
      expect(new Set(ok.parts.map((p) => (p as Uint8Array).buffer)).size).toBe(1);
      expect(ok.index).toBeDefined();
      const here = new CompactLocationsBuilder();
      for (const p of ok.parts) here.addPart(partText(p));
      expect(ok.index).toEqual(here.index());
      expect(await v.verify(push(doc(3, 600)), { version: 3, hash: ok.hash })).toEqual({
        ok: true,
        result: 'unchanged',
        version: 3,
        hash: ok.hash,
      });
      expect(await v.verify(push(doc(2)), { version: 3, hash: ok.hash })).toMatchObject({ ok: false, code: 'stale-version' });
      expect(await v.verify(push(doc(4), testKeys()), null)).toMatchObject({ ok: false, code: 'bad-signature' });
      expect(await v.verify(push(doc(4, 1, { deviceId: 'phone-9' })), null)).toMatchObject({ ok: false, code: 'wrong-device' });
      expect(await v.verify(Buffer.from('{"v":1,"doc":'), null)).toMatchObject({ ok: false, code: 'invalid-json' });
      expect(await v.verify(Buffer.alloc(2 * 1024 * 1024 + 1, 0x20), null)).toMatchObject({ ok: false, code: 'too-large' });
    });
  }

  it('moves a payload that owns its memory to the worker (no copy); copies one sharing memory with other data', async () => {
    const v = verifier(fileScript);
    // As mqtt hands over a big payload: a Buffer that is its whole ArrayBuffer. Moved: detached here after.
    const whole = push(doc(3, 600));
    expect(whole.byteOffset === 0 && whole.byteLength === whole.buffer.byteLength).toBe(true);
    expect(await v.verify(whole, null)).toMatchObject({ ok: true, result: 'apply', count: 600 });
    expect(whole.buffer.byteLength).toBe(0);
    // A payload inside a larger read: only a copy may go, the data around it stays readable and intact.
    const body = push(doc(4, 600));
    const read = Buffer.concat([Buffer.from('before|'), body, Buffer.from('|after')]);
    const inside = read.subarray(7, 7 + body.length);
    expect(await v.verify(inside, null)).toMatchObject({ ok: true, result: 'apply', version: 4 });
    expect(read.byteLength).toBe(body.length + 13);
    expect(read.subarray(0, 7).toString()).toBe('before|');
    expect(read.subarray(-6).toString()).toBe('|after');
    expect(inside.equals(body)).toBe(true);
    // A small payload from Node's shared pool (which cannot be moved): copied, the pool untouched.
    const small = push(doc(5));
    expect(small.byteLength).toBeLessThan(Buffer.poolSize);
    const neighbour = Buffer.from('x'.repeat(100));
    expect(await v.verify(small, null)).toMatchObject({ ok: true, result: 'apply', version: 5 });
    expect(JSON.parse(small.toString()).doc.version).toBe(5);
    expect(neighbour.toString()).toBe('x'.repeat(100));
  });

  it('answers each request by its id, in the order asked', async () => {
    const v = verifier(fileScript);
    const asked = [5, 1, 9, 2].map((n) => v.verify(push(doc(n, n * 40)), null));
    const answers = await Promise.all(asked);
    expect(answers.map((a) => a.ok && a.version)).toEqual([5, 1, 9, 2]);
  });

  it('a worker that runs out of memory fails that push alone; the next push gets a new worker', async () => {
    // A heap too small for a 2 MiB document: the thread dies, the agent's heap is untouched.
    const v = verifier(fileScript, 10);
    const wide = doc(1, 5000);
    for (const l of wide.locations) l.cidrs.push('10.200.0.0/16', '2001:db8:1234::/48', '192.0.2.0/24');
    const big = push(wide);
    expect(big.length).toBeGreaterThan(1024 * 1024);
    await expect(v.verify(big, null)).rejects.toBeInstanceOf(LocationsVerifierError);
    expect(await v.verify(push(doc(2)), null)).toMatchObject({ ok: true, result: 'apply', version: 2 });
  });

  it('a dead worker rejects only what it was asked, not what its replacement was asked since', async () => {
    // Dies on 'crash' (an uncaught throw: 'error', then 'exit' a little later), answers anything else.
    const v = verifier({
      kind: 'code',
      code: `const { parentPort } = require('node:worker_threads');
parentPort.on('message', (req) => {
  if (req.payload === 'crash') throw new Error('crash');
  parentPort.postMessage({ id: req.id, outcome: { ok: false, code: 'invalid', reason: 'answered' } });
});`,
    });
    const first = v.verify('crash', null);
    // Asked as soon as the first is refused: before the dead worker's 'exit' comes.
    const second = first.then(
      () => null,
      () => v.verify('ok', null),
    );
    await expect(first).rejects.toBeInstanceOf(LocationsVerifierError);
    expect(await second).toEqual({ ok: false, code: 'invalid', reason: 'answered' });
  });

  it('a worker that cannot load rejects with a typed error, each time it is asked', async () => {
    const v = verifier({ kind: 'code', code: 'throw new Error("broken worker")' });
    await expect(v.verify(push(doc(1)), null)).rejects.toThrow(/broken worker/);
    await expect(v.verify(push(doc(1)), null)).rejects.toBeInstanceOf(LocationsVerifierError);
  });

  it('starts its thread with a push (the script looked up then), ends it when idle, starts another with the next push', async () => {
    const rec = recordingLog();
    let lookups = 0;
    const v = verifier(
      () => {
        lookups++;
        return codeScript;
      },
      undefined,
      { idleMs: 150, log: rec.log },
    );
    // Made, not started: no thread, and the worker's code not even looked up.
    expect(v.running).toBe(false);
    expect(lookups).toBe(0);
    // Pushes in a burst share one worker.
    const answers = await Promise.all([1, 2, 3].map((n) => v.verify(push(doc(n, 50)), null)));
    expect(answers.map((a) => a.ok && a.version)).toEqual([1, 2, 3]);
    expect(await v.verify(push(doc(4)), null)).toMatchObject({ ok: true, version: 4 });
    expect(v.running).toBe(true);
    expect(v.starts).toBe(1);
    // Nothing asked for idleMs: its thread ends.
    await vi.waitFor(() => expect(v.running).toBe(false), { timeout: 5000 });
    expect(rec.lines().some((l) => l.msg === 'locations worker ended: idle')).toBe(true);
    // The next push starts a new one and is verified off this thread as before.
    expect(await v.verify(push(doc(5, 50)), null)).toMatchObject({ ok: true, result: 'apply', version: 5 });
    expect(v.starts).toBe(2);
    expect(lookups).toBe(2);
    // Ending an idle worker is not a failure: nothing logged above debug.
    expect(rec.lines().filter((l) => (l.level as number) >= 40)).toEqual([]);
  });

  it('a push waiting when the idle time would be up keeps the worker until it is answered', async () => {
    const v = verifier(fileScript, undefined, { idleMs: 50 });
    expect(await v.verify(push(doc(1)), null)).toMatchObject({ ok: true });
    // A big push asked just before idleMs: answered by the same worker, not cut off.
    await new Promise((r) => setTimeout(r, 40));
    expect(await v.verify(push(doc(2, 3000)), null)).toMatchObject({ ok: true, version: 2, count: 3000 });
    expect(v.starts).toBe(1);
  });

  it('a push streaming in, or held until verified, keeps the worker past the idle time; released, the worker ends', async () => {
    const v = verifier(fileScript, undefined, { idleMs: 50 });
    expect(await v.verify(push(doc(1)), null)).toMatchObject({ ok: true });
    const whole = push(doc(2, 500));
    // Opened while the idle time runs, written slowly, held after its end: its bytes are in the worker.
    const stream = v.openStream(whole.length);
    stream.write(whole.subarray(0, 1000));
    await new Promise((r) => setTimeout(r, 120));
    stream.write(whole.subarray(1000));
    const held = stream.end();
    await new Promise((r) => setTimeout(r, 120));
    expect(v.running).toBe(true);
    expect(await v.verify(held, null)).toMatchObject({ ok: true, version: 2, count: 500 });
    expect(v.starts).toBe(1);
    // A stream released unverified (a superseded push) lets the worker end.
    const dropped = v.openStream(whole.length);
    dropped.write(whole);
    dropped.end().release();
    await vi.waitFor(() => expect(v.running).toBe(false), { timeout: 5000 });
  });

  it('a worker that failed a push (an error answer) still ends when idle', async () => {
    const v = verifier(
      {
        kind: 'code',
        code: `const { parentPort } = require('node:worker_threads');
parentPort.on('message', (req) => parentPort.postMessage({ id: req.id, error: 'refused' }));`,
      },
      undefined,
      { idleMs: 50 },
    );
    await expect(v.verify('x', null)).rejects.toThrow(/refused/);
    expect(v.running).toBe(true);
    await vi.waitFor(() => expect(v.running).toBe(false), { timeout: 5000 });
  });

  it('close() rejects what is waiting and ends the thread; nothing is asked after', async () => {
    const v = verifier(fileScript);
    const waiting = v.verify(push(doc(1, 3000)), null).catch((err: Error) => err);
    await v.close();
    expect(await waiting).toBeInstanceOf(LocationsVerifierError);
    expect(String(await waiting)).toMatch(/closed/);
    expect(v.running).toBe(false);
    await expect(v.verify(push(doc(1)), null)).rejects.toThrow(/closed/);
  });
  it('a payload streamed in pieces (a push taken off the socket) gets the verdict the whole payload gets', async () => {
    const v = verifier(fileScript);
    const whole = push(doc(4, 2000));
    const stream = v.openStream(whole.length);
    // Pieces as a socket gives them: uneven, views of a larger buffer the caller reuses.
    const scratch = Buffer.alloc(100_000);
    for (let at = 0, k = 1; at < whole.length; k++) {
      const n = Math.min(7_000 * k, whole.length - at);
      whole.copy(scratch, 5, at, at + n);
      stream.write(scratch.subarray(5, 5 + n));
      scratch.fill(0);
      at += n;
    }
    const streamed = (await v.verify(stream.end(), null)) as Extract<VerifiedLocations, { result: 'apply' }>;
    const direct = (await v.verify(Buffer.from(whole), null)) as Extract<VerifiedLocations, { result: 'apply' }>;
    expect(streamed).toMatchObject({ ok: true, result: 'apply', version: 4, count: 2000, hash: direct.hash });
    expect(streamed.parts.map(partText)).toEqual(direct.parts.map(partText));
    // Malformed and cut short, streamed: refused as the whole one is, by the same checks.
    const bad = v.openStream(whole.length / 2);
    bad.write(whole.subarray(0, whole.length / 2));
    expect(await v.verify(bad.end(), null)).toMatchObject({ ok: false, code: 'invalid-json' });
  });

  it('a streamed payload verified twice, released, short, or whose worker died is a verifier failure, never a verdict', async () => {
    const v = verifier(fileScript);
    const whole = push(doc(5, 10));
    const s1 = v.openStream(whole.length);
    s1.write(whole);
    const h1 = s1.end();
    expect(await v.verify(h1, null)).toMatchObject({ ok: true, version: 5 });
    await expect(v.verify(h1, null)).rejects.toBeInstanceOf(LocationsVerifierError);
    const s2 = v.openStream(whole.length);
    s2.write(whole);
    const h2 = s2.end();
    h2.release();
    await expect(v.verify(h2, null)).rejects.toThrow(/not held/);
    const s3 = v.openStream(whole.length);
    s3.write(whole.subarray(0, 10));
    await expect(v.verify(s3.end(), null)).rejects.toThrow(/10 of/);
    // The worker dies while a push arrives: its bytes are gone with it; the next push gets a new worker.
    const s4 = v.openStream(whole.length);
    s4.write(whole.subarray(0, 100));
    await (v as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    s4.write(whole.subarray(100));
    await expect(v.verify(s4.end(), null)).rejects.toThrow(/stopped while the push arrived/);
    const s5 = v.openStream(whole.length);
    s5.write(whole);
    expect(await v.verify(s5.end(), null)).toMatchObject({ ok: true, version: 5 });
  });
});
