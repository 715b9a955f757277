// What the server instances share through the database: their broker users, and
// named secrets (made by whichever instance asks first).
import type { Sql } from './sql.js';

export class ServerSharedStore {
  constructor(private readonly s: Sql) {}

  async setServerBrokerUser(username: string, hash: string, bcrypt: string | null = null): Promise<void> {
    await this.s.run(
      'INSERT INTO broker_server_users (username, hash, bcrypt, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET hash = excluded.hash, bcrypt = excluded.bcrypt',
      [username, hash, bcrypt, this.s.iso()],
    );
  }

  async serverBrokerUsers(): Promise<{ username: string; hash: string; bcrypt: string | null }[]> {
    return (await this.s.all('SELECT username, hash, bcrypt FROM broker_server_users ORDER BY username')) as {
      username: string;
      hash: string;
      bcrypt: string | null;
    }[];
  }

  /** The named secret, created with make() by whichever instance asks first. */
  async sharedSecret(name: string, make: () => string): Promise<string> {
    await this.s.run('INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [
      name,
      make(),
      this.s.iso(),
    ]);
    return (await this.s.column('SELECT value FROM server_secrets WHERE name = ?', [name]))[0] as string;
  }
}
