// Where the locations worker's code is: its compiled file beside this one. The
// single-executable ARM bundle has no files of its own: scripts/build-arm.mjs
// replaces this module with one returning the worker's code, bundled as a string,
// which the worker runs with eval (built-in modules only, all it needs).
import type { WorkerScript } from './locations-verifier.js';

export function locationsWorkerScript(): WorkerScript {
  return { kind: 'file', url: new URL('./locations-worker.js', import.meta.url) };
}
