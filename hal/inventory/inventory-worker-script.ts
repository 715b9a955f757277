// Where the inventory worker finds systeminformation: node_modules, resolved from here.
// The single-executable ARM bundle has no node_modules: scripts/build-arm.mjs replaces
// this module with one returning systeminformation bundled as a string (a script
// defining `si`, built-in modules outside), which the worker runs with eval.
/** How the worker gets systeminformation: resolved from a module's place, or carried as code. */
export type InventoryWorkerScript = { kind: 'module'; from: string } | { kind: 'code'; code: string };

export function inventoryWorkerScript(): InventoryWorkerScript {
  return { kind: 'module', from: import.meta.url };
}
