// Types for the tests of scripts/build-pjproject.mjs (a plain script so setup runs it before any build).
export declare const PJPROJECT: { version: string; archive: string; archiveSha256: string; treeId: string; url: string };
export declare const TARGETS: Record<'x64' | 'arm64' | 'armv7', { triple: string; host: string | null }>;
export declare const CONFIGURE: string[];
export declare const CFLAGS: string;
export declare class PjprojectError extends Error {}
export type Env = Record<string, string | undefined>;
export declare function cacheRoot(env?: Env): string;
export declare function buildKey(target: string): string;
export declare function prefixOf(target: string, env?: Env): string;
export declare function gitTreeId(dir: string): string;
export declare function locateSource(
  env?: Env,
  say?: (m: string) => void,
): Promise<{ kind: 'dir' | 'archive'; path: string; downloaded?: boolean }>;
export declare function buildTarget(target: string, opts?: { env?: Env; say?: (m: string) => void }): Promise<string>;
