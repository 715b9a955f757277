// Typed errors: each carries a stable code that logs, the CLI and events can use.
import { E911Error } from '../provisioning/common/errors.js';

// The base lives with the code both ends share; the agent's own errors follow.
export { ConfigError, E911Error } from '../provisioning/common/errors.js';

export class StoreError extends E911Error {}

/**
 * Why the store could not be opened or written, each handled its own way (only
 * corruption moves the file aside): see classifyStoreError().
 */
export type StoreFailure = 'corrupt' | 'too-new' | 'access-denied' | 'disk-full' | 'busy' | 'io';

/** The file is not a database, or is damaged (SQLITE_CORRUPT, SQLITE_NOTADB, a failed integrity check). */
export class StoreCorruptError extends StoreError {
  readonly failure = 'corrupt' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super('store-corrupt', message, options);
  }
}
/** Written by a newer agent: kept as is (a downgrade must not destroy it); this agent runs without it. */
export class StoreTooNewError extends StoreError {
  readonly failure = 'too-new' as const;
  constructor(message: string) {
    super('store-too-new', message);
  }
}
/** EACCES, EPERM, read-only file system, cannot open: a setup fault, retried. */
export class StoreAccessError extends StoreError {
  readonly failure = 'access-denied' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super('store-access-denied', message, options);
  }
}
/** ENOSPC / SQLITE_FULL: retried; events wait in memory. */
export class StoreFullError extends StoreError {
  readonly failure = 'disk-full' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super('store-disk-full', message, options);
  }
}
/** Another process holds the database (SQLITE_BUSY / SQLITE_LOCKED): retried. */
export class StoreBusyError extends StoreError {
  readonly failure = 'busy' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super('store-busy', message, options);
  }
}
/** Any other I/O failure (SQLITE_IOERR...): retried. */
export class StoreIoError extends StoreError {
  readonly failure = 'io' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super('store-io', message, options);
  }
}

export type TypedStoreError = StoreCorruptError | StoreTooNewError | StoreAccessError | StoreFullError | StoreBusyError | StoreIoError;

/** Sorts an error from SQLite or the file system into one of the typed store errors. */
export function classifyStoreError(err: unknown, what: string): TypedStoreError {
  if (
    err instanceof StoreCorruptError ||
    err instanceof StoreTooNewError ||
    err instanceof StoreAccessError ||
    err instanceof StoreFullError ||
    err instanceof StoreBusyError ||
    err instanceof StoreIoError
  )
    return err;
  const code = String((err as { code?: unknown })?.code ?? '');
  const msg = `${what}: ${(err as Error)?.message ?? String(err)}`;
  if (code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB')) return new StoreCorruptError(msg, { cause: err });
  if (code.startsWith('SQLITE_FULL') || code === 'ENOSPC' || code === 'EDQUOT') return new StoreFullError(msg, { cause: err });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new StoreBusyError(msg, { cause: err });
  if (
    code === 'EACCES' ||
    code === 'EPERM' ||
    code === 'EROFS' ||
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_PERM') ||
    code.startsWith('SQLITE_AUTH')
  ) {
    return new StoreAccessError(msg, { cause: err });
  }
  return new StoreIoError(msg, { cause: err });
}

export class AddressRejectedError extends E911Error {
  constructor(code: AddressRejectCode, message: string) {
    super(code, message);
  }
}

export type AddressRejectCode =
  | 'malformed'
  | 'unsigned'
  | 'bad-signature'
  | 'invalid-address'
  | 'wrong-device'
  | 'stale-version'
  | 'version-conflict';

export class ControlError extends E911Error {}
