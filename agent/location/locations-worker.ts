// Worker thread entry: verifies 'locations/set' pushes off the agent's main
// thread (see locations-verify.ts). Stateless: one request in, one answer out.
// Loaded from dist/ as a file, or, in the single-executable ARM bundle, from
// the code string the bundle carries (agent/location/locations-worker-script.ts).
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { publicKeyFromText } from '../../provisioning/protocol/signing.js';
import { verifyLocationsPush } from './locations-verify.js';
import { CompactLocationsBuilder, partText } from './locations-view.js';
import type { WorkerReply, WorkerRequest, WorkerSetup, WorkerStreamMessage } from './locations-verifier.js';

const setup = workerData as WorkerSetup;
// A push can wait, a keypad digit cannot: this thread yields the CPU to the agent's main
// thread (and its GC). On Linux nice is per thread; pid 0 is the calling thread. Raising
// one's own nice needs no privilege; where it is refused the worker runs at the agent's.
let niceRefused: string | null = null;
try {
  os.setPriority(0, 19);
} catch (err) {
  niceRefused = (err as Error).message;
}
const serverKey = publicKeyFromText(setup.serverPublicKey);

/** Payloads streamed in (a large push taken off the socket as it arrived): filled as pieces come. */
const streams = new Map<number, { bytes: Buffer; at: number }>();

function onStream(m: WorkerStreamMessage): void {
  if ('begin' in m) {
    streams.set(m.stream, { bytes: Buffer.allocUnsafe(m.begin), at: 0 });
  } else if ('chunk' in m) {
    const s = streams.get(m.stream);
    if (!s) return;
    // More than announced: kept short, so the verify that follows reports the mismatch.
    const n = Math.min(m.chunk.length, s.bytes.length - s.at);
    s.bytes.set(m.chunk.subarray(0, n), s.at);
    s.at += n;
  } else {
    streams.delete(m.stream);
  }
}

function payloadOf(req: WorkerRequest): Uint8Array | string {
  const p = req.payload;
  if (typeof p === 'string' || p instanceof Uint8Array) return p;
  const s = streams.get(p.stream);
  streams.delete(p.stream);
  if (!s) throw new Error(`streamed payload ${p.stream} is not here`);
  if (s.at !== s.bytes.length) throw new Error(`streamed payload ${p.stream} has ${s.at} of ${s.bytes.length} bytes`);
  return s.bytes;
}

parentPort!.on('message', (req: WorkerRequest | WorkerStreamMessage) => {
  if ('stream' in req) return onStream(req);
  let reply: WorkerReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const outcome = verifyLocationsPush(payloadOf(req), { deviceId: setup.deviceId, serverKey, current: req.current });
    if (outcome.ok && outcome.result === 'apply') {
      // The matcher index is built here, not on the main thread (its objects made the main thread's GC pause).
      const built = new CompactLocationsBuilder();
      for (const part of outcome.parts) built.addPart(partText(part));
      outcome.index = built.index();
      const texts = outcome.parts.map(partText);
      transfer.push(outcome.index.starts.buffer as ArrayBuffer, outcome.index.rules.buffer as ArrayBuffer);
      if (setup.partsAs === 'strings') {
        outcome.parts = texts;
      } else {
        // The parts as bytes in one buffer, moved: the main thread keeps them off its heap.
        const bytes = Buffer.from(texts.join(''), 'utf8');
        let at = 0;
        outcome.parts = texts.map((t) => {
          const n = Buffer.byteLength(t);
          const view = new Uint8Array(bytes.buffer, bytes.byteOffset + at, n);
          at += n;
          return view;
        });
        transfer.push(bytes.buffer as ArrayBuffer);
      }
    }
    reply = { id: req.id, outcome, ...(niceRefused ? { niceRefused } : {}) };
  } catch (err) {
    // A bug here must answer, or the push would wait for ever; the main thread reports it.
    reply = { id: req.id, error: (err as Error).stack ?? String(err) };
  }
  parentPort!.postMessage(reply, transfer);
});
