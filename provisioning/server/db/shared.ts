// What the server instances share through the database: their broker users, and
// named secrets (made by whichever instance asks first).
import type { ServerDb } from './open.js';

export class ServerSharedStore {
  constructor(private readonly s: ServerDb) {}

  setServerBrokerUser(username: string, hash: string, bcrypt: string | null = null): void {
    this.s
      .q(
        'INSERT INTO broker_server_users (username, hash, bcrypt, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET hash = excluded.hash, bcrypt = excluded.bcrypt',
      )
      .run(username, hash, bcrypt, this.s.iso());
  }

  serverBrokerUsers(): { username: string; hash: string; bcrypt: string | null }[] {
    return this.s.q('SELECT username, hash, bcrypt FROM broker_server_users ORDER BY username').all() as {
      username: string;
      hash: string;
      bcrypt: string | null;
    }[];
  }

  /** The named secret, created with make() by whichever instance asks first. */
  sharedSecret(name: string, make: () => string): string {
    this.s.q('INSERT OR IGNORE INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)').run(name, make(), this.s.iso());
    return this.s.q('SELECT value FROM server_secrets WHERE name = ?').pluck().get(name) as string;
  }
}
