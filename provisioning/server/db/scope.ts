// Which customer account the repository's queries belong to. Every owned row (location,
// user, phone, event, notification, audit entry, job, CSV upload, token, the settings)
// carries an account_id, and every query of an aggregate module filters or stamps it with
// the account of the context it runs in: an HTTP request runs in its token's account
// (http/auth.ts), a phone's report in its phone's (intake.ts), a job or a notification
// in the account of its row. Outside any context the queries belong to DEFAULT_ACCOUNT,
// the account every single-customer deployment (and `npm start`) has.
import { AsyncLocalStorage } from 'node:async_hooks';

export const DEFAULT_ACCOUNT = 'default';

/** An account id: lower-case letters, digits and dashes (it appears in URLs and logs). */
export const ACCOUNT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export class AccountScope {
  private readonly context = new AsyncLocalStorage<string>();

  /** The account of the running context. */
  current(): string {
    return this.context.getStore() ?? DEFAULT_ACCOUNT;
  }

  /** Runs fn, and whatever it awaits, in the account. */
  run<T>(accountId: string, fn: () => T): T {
    return this.context.run(accountId, fn);
  }
}
