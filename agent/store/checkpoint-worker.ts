// Worker thread entry: checkpoints the agent's WAL from a second SQLite
// connection (started by the first checkpoint, told to close when idle), so the copy of WAL pages into the database file and its fsyncs
// never run on the agent's main thread (its own connection has auto-checkpoint
// off). PASSIVE: it never takes the writer's lock, so a write on the main
// thread (an emergency event's row) never waits for it.
// Loaded from dist/ as a file, or, in the single-executable ARM bundle, from the
// code string the bundle carries (agent/store/checkpoint-worker-script.ts).
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { CheckpointReply, CheckpointRequest, CheckpointSetup } from './wal-checkpointer.js';

const setup = workerData as CheckpointSetup;
// A checkpoint can wait, a keypad digit cannot (nice is per thread on Linux; pid 0 is this thread).
let niceRefused: string | null = null;
try {
  os.setPriority(0, 19);
} catch (err) {
  niceRefused = (err as Error).message;
}
const db = new Database(setup.file, { fileMustExist: true, ...(setup.nativeBinding ? { nativeBinding: setup.nativeBinding } : {}) });
// As the agent's connection: in WAL a checkpoint syncs the WAL before copying and the database after.
db.pragma('synchronous = NORMAL');
const passive = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

parentPort!.on('message', (req: CheckpointRequest) => {
  if ('close' in req) {
    // Idle: the connection closes and, with nothing left to wait for, the thread exits (code 0).
    db.close();
    parentPort!.close();
    return;
  }
  let reply: CheckpointReply;
  try {
    const t0 = performance.now();
    const r = passive.get() as { busy: number; log: number; checkpointed: number };
    reply = { id: req.id, busy: r.busy !== 0, log: r.log, checkpointed: r.checkpointed, ms: performance.now() - t0 };
    if (niceRefused) reply.niceRefused = niceRefused;
  } catch (err) {
    reply = { id: req.id, error: (err as Error).stack ?? String(err) };
  }
  parentPort!.postMessage(reply);
});
parentPort!.postMessage({ id: 0, ready: true } satisfies CheckpointReply);
