// The local admin commands' shared part: the data folder's database, and API tokens.
import { ACCOUNT_ID, DEFAULT_ACCOUNT, type Repo } from '../db/repo.js';
import type { openRepo as OpenRepo } from '../db/store.js';
import { UsageError, need } from './common.js';

/**
 * The opener of the store (--store or E911_STORE; unset: the data folder's SQLite), loaded
 * when a command needs it (the CLI's other commands start faster without it).
 */
export async function openRepo(store?: string): Promise<typeof OpenRepo> {
  const { openRepo: open } = await import('../db/store.js');
  return (o) => open({ ...o, ...(store ? { store } : {}) });
}

/** fn on the store, closed after. */
export async function withRepo<T>(dataDir: string, open: typeof OpenRepo, fn: (repo: Repo) => Promise<T> | T): Promise<T> {
  const repo = open({ dataDir });
  try {
    return await fn(repo);
  } finally {
    await repo.close();
  }
}

/**
 * Tokens of one account (--account ID; default: the default account). A token made here for
 * the default account is a provider's (whoever runs this holds the database anyway): it may
 * also create accounts and mint their first tokens over the API. One for another account
 * (created if new) administers that account only.
 */
export async function tokenCommand(
  repo: Repo,
  sub: string | undefined,
  arg: string | undefined,
  out: (s: string) => void,
  opts: { account?: string | undefined } = {},
): Promise<number> {
  const account = opts.account ?? DEFAULT_ACCOUNT;
  if (!ACCOUNT_ID.test(account)) throw new UsageError(`--account: lower-case letters, digits and dashes, not ${JSON.stringify(account)}`);
  return repo.inAccount(account, async () => {
    switch (sub) {
      case 'create': {
        const name = need(arg, 'a token NAME');
        if (!(await repo.accountExists(account))) await repo.createAccount(account, '');
        const token = await newToken(repo, name, { provider: account === DEFAULT_ACCOUNT });
        out(`${token}\n`);
        return 0;
      }
      case 'list':
        out(`${JSON.stringify(await repo.tokens(), null, 2)}\n`);
        return 0;
      case 'revoke':
        if (!(await repo.revokeToken(Number(need(arg, 'a token ID'))))) throw new UsageError(`no active token ${arg}`);
        await repo.audit('local', 'token.revoke', 'token', arg ?? null);
        return 0;
      default:
        throw new UsageError('token create NAME | list | revoke ID  [--account ID]');
    }
  });
}

/** A new token of the running account (shown once; only its hash is kept). */
export async function newToken(repo: Repo, name: string, opts: { provider?: boolean } = {}): Promise<string> {
  const token = `e911_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')}`;
  await repo.createToken(name, token, opts);
  await repo.audit('local', 'token.create', 'token', null, { name, ...(opts.provider ? { provider: true } : {}) });
  return token;
}
