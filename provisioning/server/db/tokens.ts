// API tokens and the portal sessions made from them: only hashes are stored.
import { createHash } from 'node:crypto';
import type { Sql } from './sql.js';
import { int, rowMapper, text, textOrNull, type Row } from './rows.js';
import type { ApiToken } from './types.js';

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function identity(r: Row): TokenIdentity {
  const provider = r.provider === 1;
  // A session's chosen account counts for a provider's token only, whatever the row says.
  const shown = provider && typeof r.shown_account === 'string' ? r.shown_account : null;
  return {
    id: r.id as number,
    name: r.name as string,
    accountId: shown ?? (r.account_id as string),
    provider,
    ownAccountId: r.account_id as string,
  };
}

const toApiToken = rowMapper<ApiToken>({
  id: int('id'),
  name: text('name'),
  createdAt: text('created_at'),
  lastUsedAt: textOrNull('last_used_at'),
  revokedAt: textOrNull('revoked_at'),
});

/** Who a valid token or session is: its token, the account it administers, and whether it is a provider's. */
export interface TokenIdentity {
  id: number;
  name: string;
  /** The account its requests run in: the token's, or the one a provider's portal session chose. */
  accountId: string;
  provider: boolean;
  /** The token's own account. */
  ownAccountId: string;
}

export class TokenStore {
  constructor(
    private readonly s: Sql,
    private readonly acct: () => string,
  ) {}

  /** A token of the running account; a provider token may also create accounts. */
  async createToken(name: string, token: string, opts: { provider?: boolean } = {}): Promise<number> {
    const r = await this.s.get<{ id: number }>(
      'INSERT INTO api_tokens (name, hash, created_at, account_id, provider) VALUES (?, ?, ?, ?, ?) RETURNING id',
      [name, tokenHash(token), this.s.iso(), this.acct(), opts.provider ? 1 : 0],
    );
    return r!.id;
  }

  /** Who the token is when it is valid and not revoked (whichever its account: this is how a request learns its account). */
  async verifyToken(token: string): Promise<TokenIdentity | null> {
    const r = (await this.s.get(
      'SELECT id, name, last_used_at, account_id, provider FROM api_tokens WHERE hash = ? AND revoked_at IS NULL',
      [tokenHash(token)],
    )) as Row | undefined;
    if (!r) return null;
    // Once a minute at most: reading the API must not turn into a write per request.
    const last = r.last_used_at ? Date.parse(r.last_used_at as string) : 0;
    if (this.s.now().getTime() - last > 60_000)
      await this.s.run('UPDATE api_tokens SET last_used_at = ? WHERE id = ?', [this.s.iso(), r.id]);
    return identity(r);
  }

  async tokens(): Promise<ApiToken[]> {
    return ((await this.s.all('SELECT * FROM api_tokens WHERE account_id = ? ORDER BY id', [this.acct()])) as Row[]).map(toApiToken);
  }

  async revokeToken(id: number): Promise<boolean> {
    return (
      (
        await this.s.run('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL', [
          this.s.iso(),
          id,
          this.acct(),
        ])
      ).changes > 0
    );
  }

  // ---- portal sessions (only the hash of a session id is stored) ----

  async createSession(id: string, tokenId: number, absoluteMs: number): Promise<{ expiresAt: string }> {
    const now = this.s.now();
    const expiresAt = new Date(now.getTime() + absoluteMs).toISOString();
    await this.s.run('INSERT INTO admin_sessions (id_hash, token_id, created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?)', [
      tokenHash(id),
      tokenId,
      now.toISOString(),
      now.toISOString(),
      expiresAt,
    ]);
    return { expiresAt };
  }

  /**
   * The session's token when the session is live: not revoked, before its absolute expiry,
   * used within idleMs, and its token not revoked. A live session's last use moves to now.
   */
  async useSession(id: string, idleMs: number): Promise<TokenIdentity | null> {
    const now = this.s.now();
    const r = (await this.s.get(
      `SELECT s.id_hash, s.last_used_at, s.expires_at, s.account_id AS shown_account, t.id, t.name, t.account_id, t.provider
       FROM admin_sessions s JOIN api_tokens t ON t.id = s.token_id
       WHERE s.id_hash = ? AND s.revoked_at IS NULL AND t.revoked_at IS NULL`,
      [tokenHash(id)],
    )) as Row | undefined;
    if (!r) return null;
    if (now.getTime() >= Date.parse(r.expires_at as string) || now.getTime() - Date.parse(r.last_used_at as string) > idleMs) return null;
    // At most every 10 s: a page's burst of requests is not a burst of writes.
    if (now.getTime() - Date.parse(r.last_used_at as string) > 10_000)
      await this.s.run('UPDATE admin_sessions SET last_used_at = ? WHERE id_hash = ?', [now.toISOString(), r.id_hash]);
    return identity(r);
  }

  /** The account a live session shows from now on (null: its token's). */
  async showAccount(id: string, accountId: string | null): Promise<boolean> {
    return (
      (await this.s.run('UPDATE admin_sessions SET account_id = ? WHERE id_hash = ? AND revoked_at IS NULL', [accountId, tokenHash(id)]))
        .changes > 0
    );
  }

  async revokeSession(id: string): Promise<boolean> {
    return (
      (await this.s.run('UPDATE admin_sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL', [this.s.iso(), tokenHash(id)]))
        .changes > 0
    );
  }

  /** Forgets sessions that ended more than a day ago. */
  async pruneSessions(): Promise<number> {
    const cutoff = new Date(this.s.now().getTime() - 24 * 3600_000).toISOString();
    return (await this.s.run('DELETE FROM admin_sessions WHERE expires_at < ? OR revoked_at < ?', [cutoff, cutoff])).changes;
  }
}
