// Where the checkpoint worker's code is: its compiled file beside this one. The
// single-executable ARM bundle has no files of its own: scripts/build-arm.mjs
// replaces this module with one returning the worker's code as a string (run with
// eval) and the path of the better_sqlite3.node it carries in lib/.
import type { CheckpointWorkerScript } from './wal-checkpointer.js';

export function checkpointWorkerScript(): CheckpointWorkerScript {
  return { kind: 'file', url: new URL('./checkpoint-worker.js', import.meta.url) };
}
