// A throwaway PostgreSQL cluster for the server's store tests: initdb into a temp folder,
// pg_ctl start on a free loopback port, and a fresh database per test made from a
// migrated template (CREATE DATABASE ... TEMPLATE: a file copy, no migration per test).
// PostgreSQL refuses to run as root, and tests run as root: the cluster runs as `nobody`
// (setpriv), its data folder owned by it. Durability is off (fsync, synchronous_commit):
// nothing here outlives the test file; the scale benchmark turns it on (durable).
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';

/** The newest Debian PostgreSQL's programs (/usr/lib/postgresql/<major>/bin), or null. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const majors = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? path.join(root, majors[0], 'bin') : null;
}

export function postgresMissing(): string | null {
  if (!postgresBin()) return 'PostgreSQL is not installed (Debian postgresql: /usr/lib/postgresql/*/bin/initdb)';
  if (process.getuid?.() === 0 && !existsSync('/usr/bin/setpriv'))
    return 'setpriv is not installed (Debian util-linux): PostgreSQL refuses root';
  return null;
}

export interface PgCluster {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database: string): string;
  /** A new empty database; from the given template database when named. */
  createDatabase(template?: string): Promise<string>;
  /** Runs SQL as the superuser in the postgres database. */
  admin(sql: string): Promise<void>;
  stop(): Promise<void>;
}

export interface PgStartOptions {
  /**
   * Keep PostgreSQL's durability (fsync, synchronous commit, full-page writes) as a deployment
   * would: for benchmarks, beside SQLite's synchronous=FULL. Tests leave it off.
   */
  durable?: boolean;
}

export async function startPostgres(opts: PgStartOptions = {}): Promise<PgCluster> {
  const bin = postgresBin();
  if (!bin) throw new Error(postgresMissing() ?? 'PostgreSQL not found');
  const root = mkdtempSync(path.join(os.tmpdir(), 'e911-pg-'));
  // The unprivileged user must reach its folders through ours.
  chmodSync(root, 0o755);
  const data = path.join(root, 'data');
  const sockets = path.join(root, 'run');
  const asRoot = process.getuid?.() === 0;
  for (const d of [data, sockets]) {
    mkdirSync(d, { mode: 0o700 });
    if (asRoot) chownSync(d, 65534, 65534);
  }
  const run = (cmd: string, args: string[]) => {
    const r = asRoot
      ? spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', path.join(bin, cmd), ...args], { encoding: 'utf8' })
      : spawnSync(path.join(bin, cmd), args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  const port = await freePort();
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-locale', '-E', 'UTF8', '--no-sync']);
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      path.join(data, 'server.log'),
      '-w',
      '-t',
      '30',
      '-o',
      `-p ${port} -k ${sockets} -c listen_addresses=127.0.0.1${opts.durable ? '' : ' -c fsync=off -c synchronous_commit=off -c full_page_writes=off'} -c max_connections=200`,
      'start',
    ]);
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  let n = 0;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: url('postgres') });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  return {
    port,
    url,
    admin,
    async createDatabase(template?: string) {
      const name = `t${process.pid}_${++n}`;
      await admin(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
      return url(name);
    },
    async stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
