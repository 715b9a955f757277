// The server's typed errors; the HTTP API maps each code to a status.
import { E911Error } from '../common/errors.js';
import type { Issue } from './validation.js';

export class ValidationError extends E911Error {
  constructor(readonly issues: Issue[]) {
    super('invalid', `invalid input: ${issues.map((i) => `${i.field} ${i.reason}`).join('; ')}`);
  }
}

export class NotFoundError extends E911Error {
  constructor(what: string) {
    super('not-found', `${what} not found`);
  }
}

/** The change conflicts with other data (a duplicate code, a location still in use). */
export class ConflictError extends E911Error {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** The change needs something first (E911 needs the mandatory information complete). */
export class PreconditionError extends E911Error {
  constructor(
    message: string,
    readonly missing: string[] = [],
  ) {
    super('precondition', message);
  }
}

/**
 * The part is stopping and did not take the work (a phone's report, a push): nothing of it was
 * stored, and the phone sends it again to whichever instance takes it next.
 */
export class StoppingError extends E911Error {
  constructor(what: string) {
    super('stopping', `${what}: not taken, the server is stopping`);
  }
}

export class LimitError extends E911Error {
  constructor(message: string) {
    super('too-large', message);
  }
}
