// Native addons carried beside the ARM executable, in lib/ next to it, loaded by
// explicit path. The bundle maps the packages' own loaders ('bindings',
// 'node-gyp-build') here, so no package ever searches for prebuilds of other platforms.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { E911Error } from '../errors.js';

export class NativeAddonError extends E911Error {}

/** In the bundle import.meta.url names the executable (or the .cjs run by a host node). */
export function nativeDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.E911_NATIVE_DIR || path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib');
}

// Like require's cache: a second dlopen would run the addon's init again.
const loaded = new Map<string, unknown>();

/** Loads lib/<name>.node once; `name` may carry the .node suffix or not. */
export function loadCarried(name: string, env: NodeJS.ProcessEnv = process.env): unknown {
  const file = path.join(nativeDir(env), name.endsWith('.node') ? name : `${name}.node`);
  if (loaded.has(file)) return loaded.get(file);
  const mod = { exports: {} as unknown };
  try {
    process.dlopen(mod, file);
  } catch (err) {
    throw new NativeAddonError('native-addon-missing', `cannot load native addon ${file}: ${(err as Error).message}`, { cause: err });
  }
  loaded.set(file, mod.exports);
  return mod.exports;
}

export interface AddonCheck {
  file: string;
  ok: boolean;
  error?: string;
}

/** Loads every carried addon once: the technician's and the smoke test's proof that lib/ fits this runtime. */
export function checkCarried(env: NodeJS.ProcessEnv = process.env): AddonCheck[] {
  const dir = nativeDir(env);
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => f.endsWith('.node'))
      .sort();
  } catch (err) {
    return [{ file: dir, ok: false, error: (err as Error).message }];
  }
  return files.map((file) => {
    try {
      loadCarried(file, env);
      return { file, ok: true };
    } catch (err) {
      return { file, ok: false, error: (err as Error).message };
    }
  });
}
