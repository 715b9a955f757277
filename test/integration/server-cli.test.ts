// The e911-server command line (dist/provisioning/server/main.js, built by
// `npm test`): one command starts the embedded default; the CLI drives the
// same operations as the API; broker-config renders the Mosquitto files.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, statSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/agent.js';
import { stopProcess } from '../helpers/process.js';
import mqtt from 'mqtt';
import { sampleAddress } from '../helpers/address.js';
import { topicFor } from '../../provisioning/protocol/topics.js';
import { publicKeyFromText, verifyDocument } from '../../provisioning/protocol/signing.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(repo, 'dist/provisioning/server/main.js');

describe('e911-server command line', () => {
  let dir: string;
  let child: ChildProcess;
  let output = '';
  let mqttPort: number;

  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [MAIN, '--data', path.join(dir, 'data'), ...args], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { PATH: process.env.PATH },
    });
    return { code: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout) as Record<string, unknown> };
  };

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` (npm test does)`);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-cli-'));
    const httpPort = await freePort();
    mqttPort = await freePort();
    child = spawn(
      process.execPath,
      [MAIN, 'run', '--data', path.join(dir, 'data'), '--port', String(mqttPort), '--http-port', String(httpPort)],
      {
        env: { PATH: process.env.PATH },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor(
      () => output.includes('provisioning server ready'),
      15_000,
      () => output,
    );
  });

  afterAll(async () => {
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
  });

  it('customer accounts: the first-start token creates one and mints its token, which sees that account only', () => {
    expect(cli('accounts', 'create', 'acme', '--name', 'Acme Corp').json()).toMatchObject({ id: 'acme', name: 'Acme Corp' });
    expect(cli('accounts', 'list').out).toContain('"acme"');
    const { token } = cli('accounts', 'token', 'acme', '--name', 'acme-admin').json() as { token: string };
    expect(cli('account', 'show', '--token', token).json()).toMatchObject({ id: 'acme', name: 'Acme Corp' });
    // An account's own admin may not create accounts.
    expect(cli('accounts', 'list', '--token', token).code).not.toBe(0);
    // Locally: a token of another account, created with it.
    const local = cli('token', 'create', 'ops', '--account', 'initech');
    expect(local.code).toBe(0);
    expect(cli('account', 'show', '--token', local.out.trim()).json()).toMatchObject({ id: 'initech' });
    expect(cli('token', 'list', '--account', 'initech').json()).toEqual([expect.objectContaining({ name: 'ops' })]);
    // Eight CLI processes: seconds each on a loaded host.
  }, 90_000);

  // Fifteen CLI processes one after another, each a whole node start: under a loaded CI
  // machine that took over the default 30 s (it is a behaviour test, not a timing one).
  it('drives the admin API: account, location, user, credentials, bulk job, CSV', () => {
    expect(cli('account', 'set', '--name', 'Example Corp', '--contact-email', 'it@example.com').json()).toMatchObject({
      name: 'Example Corp',
    });
    writeFileSync(
      path.join(dir, 'loc.json'),
      JSON.stringify({
        code: 'AUS',
        name: 'Austin',
        address: { country: 'US', houseNumber: '1', street: 'Congress Ave', city: 'Austin', state: 'TX', postalCode: '78701' },
        timeZone: 'America/Chicago',
      }),
    );
    expect(cli('locations', 'create', '--file', path.join(dir, 'loc.json')).json()).toMatchObject({
      id: 1,
      civic: { A1: 'TX', PC: '78701' },
    });
    writeFileSync(
      path.join(dir, 'user.json'),
      JSON.stringify({ username: 'bob', displayName: 'Bob Jones', locationId: 1, callback: '+15125550100', deviceIds: ['desk-7'] }),
    );
    expect(cli('users', 'create', '--file', path.join(dir, 'user.json')).json()).toMatchObject({ username: 'bob', deviceIds: ['desk-7'] });
    const enable = cli('e911', 'enable');
    expect(enable.code).toBe(1);
    expect(enable.json()).toMatchObject({ error: 'precondition', missing: ['an SMTP server or SMS provider for notifications'] });
    expect(cli('phones', 'credentials', 'desk-7').json()).toMatchObject({
      username: 'desk-7',
      password: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
    });
    expect(cli('bulk-emails', '--emails', 'a@example.com,b@example.com', '--all', '--wait').json()).toMatchObject({
      status: 'done',
      result: { updated: 1 },
    });
    const csv = path.join(dir, 'users.csv');
    expect(cli('csv', 'export', '--out', csv).code).toBe(0);
    expect(readFileSync(csv, 'utf8')).toContain('1,bob,Bob Jones,,AUS,Austin,a@example.com,b@example.com,');
    writeFileSync(csv, readFileSync(csv, 'utf8').replace('a@example.com', 'c@example.com'));
    const report = cli('csv', 'validate', csv).json();
    expect(report).toMatchObject({ rows: 1, changes: 1, errorCount: 0 });
    expect(cli('csv', 'apply', report.uploadId as string, '--wait').json()).toMatchObject({ status: 'done', result: { updated: 1 } });
    expect(cli('users', 'show', '1').json()).toMatchObject({ emails: ['c@example.com', 'b@example.com'] });
    expect(cli('phones', 'show', 'nope').code).toBe(4);
    expect(cli('nonsense').code).toBe(2);
  }, 120_000);

  it('manages tokens locally and renders the Mosquitto files', () => {
    const token = cli('token', 'create', 'ci').out.trim();
    expect(token).toMatch(/^e911_/);
    const viaToken = spawnSync(
      process.execPath,
      [
        MAIN,
        '--data',
        path.join(dir, 'nowhere'),
        '--url',
        readFileSync(path.join(dir, 'data', 'api-url'), 'utf8').trim(),
        '--token',
        token,
        'account',
      ],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(viaToken.stdout)).toMatchObject({ name: 'Example Corp' });
    const out = path.join(dir, 'mosq');
    expect(cli('broker-config', '--out', out, '--instance', 'a,b', '--listen', '1883,127.0.0.1:1884').code).toBe(0);
    // Each named server instance has its own user, and only the hash is in the file.
    // The push command's user (e911-server-cli) is rendered too: `push` works against this broker.
    expect(readFileSync(path.join(out, 'passwd'), 'utf8')).toMatch(
      /^e911-server-a:\$7\$101\$.*\ne911-server-b:\$7\$101\$.*\ne911-server-cli:\$7\$101\$.*\ndesk-7:\$7\$101\$/s,
    );
    expect(readFileSync(path.join(out, 'acl'), 'utf8')).toContain('pattern write e911/v1/%u/events');
    expect(readFileSync(path.join(out, 'acl'), 'utf8')).toContain('user e911-server-b\ntopic readwrite e911/v1/#');
    const conf = readFileSync(path.join(out, 'mosquitto.conf'), 'utf8');
    expect(conf).toContain(`acl_file ${out}/acl`);
    expect(conf).toContain(
      "listener 1883\n# A login is its client id: no client can take over another client's session.\nuse_username_as_clientid true\nlistener 1884 127.0.0.1",
    );
    expect(statSync(path.join(dir, 'data', 'mqtt-e911-server-a.json')).mode & 0o077).toBe(0);
  });

  it('prints the OpenAPI document without a token (a public route), the same as docs/server-openapi.json', () => {
    const url = readFileSync(path.join(dir, 'data', 'api-url'), 'utf8').trim();
    const r = spawnSync(process.execPath, [MAIN, '--data', path.join(dir, 'nowhere'), '--url', url, 'openapi'], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { PATH: process.env.PATH },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(readFileSync(path.join(repo, 'docs', 'server-openapi.json'), 'utf8')));
  });

  it('push signs one address and publishes it logged in as its own broker user (embedded broker)', async () => {
    const creds = cli('phones', 'credentials', 'desk-7').json() as { username: string; password: string };
    const phone = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      clientId: 'desk-7',
      protocolVersion: 4,
      username: creds.username,
      password: creds.password,
    });
    try {
      const got: Buffer[] = [];
      phone.on('message', (_t, p) => got.push(p));
      await phone.subscribeAsync(topicFor('desk-7', 'address/set'), { qos: 1 });
      const file = path.join(dir, 'push.json');
      const doc = sampleAddress({ deviceId: 'desk-7', version: 99 });
      writeFileSync(file, JSON.stringify(doc));
      const r = spawnSync(
        process.execPath,
        [MAIN, '--data', path.join(dir, 'data'), 'push', '--broker', `mqtt://127.0.0.1:${mqttPort}`, '--address', file],
        { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH } },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('"as":"e911-server-cli"');
      await waitFor(() => got.length > 0, 5000);
      const signed = JSON.parse(got[0]!.toString()) as { doc: unknown; sig: string };
      expect(signed.doc).toEqual(doc);
      expect(verifyDocument(signed.doc, signed.sig, publicKeyFromText(cli('keygen').out.trim()))).toBe(true);
      // Its password is the data folder's, readable by the server's user only.
      expect(statSync(path.join(dir, 'data', 'mqtt-e911-server-cli.json')).mode & 0o077).toBe(0);
      // The broker took it as a server user: a wrong password is refused, and says so.
      const bad = spawnSync(
        process.execPath,
        [
          MAIN,
          '--data',
          path.join(dir, 'data'),
          'push',
          '--broker',
          `mqtt://127.0.0.1:${mqttPort}`,
          '--address',
          file,
          '--broker-username',
          'e911-server-cli',
          '--broker-password',
          'wrong',
        ],
        { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH } },
      );
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(/refused e911-server-cli/);
      expect(got).toHaveLength(1);
    } finally {
      await phone.endAsync();
    }
  });
});
