// The local admin commands' shared part: the data folder's database, and API tokens.
import type { Repo } from '../db/repo.js';
import { UsageError, need } from './common.js';

export async function openRepo(): Promise<typeof Repo> {
  return (await import('../db/repo.js')).Repo;
}

export function withRepo<T>(dataDir: string, RepoClass: typeof Repo, fn: (repo: Repo) => T): T {
  const repo = new RepoClass({ dataDir });
  try {
    return fn(repo);
  } finally {
    repo.close();
  }
}

export function tokenCommand(repo: Repo, sub: string | undefined, arg: string | undefined, out: (s: string) => void): number {
  switch (sub) {
    case 'create': {
      const token = newToken(repo, need(arg, 'a token NAME'));
      out(`${token}\n`);
      return 0;
    }
    case 'list':
      out(`${JSON.stringify(repo.tokens(), null, 2)}\n`);
      return 0;
    case 'revoke':
      if (!repo.revokeToken(Number(need(arg, 'a token ID')))) throw new UsageError(`no active token ${arg}`);
      repo.audit('local', 'token.revoke', 'token', arg ?? null);
      return 0;
    default:
      throw new UsageError('token create NAME | list | revoke ID');
  }
}

export function newToken(repo: Repo, name: string): string {
  const token = `e911_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')}`;
  repo.createToken(name, token);
  repo.audit('local', 'token.create', 'token', null, { name });
  return token;
}
