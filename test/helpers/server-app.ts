// The full provisioning server (ServerApp) for integration tests, on free
// loopback ports, with an API client that carries a token.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServerApp, type ServerAppOptions } from '../../provisioning/server/app.js';
import { generateSigningKeyPair, type KeyPairText } from '../../provisioning/protocol/signing.js';
import { freePort } from './ports.js';
import { pino } from 'pino';
import { silentLog } from './log.js';
import { defaultPortalDir, mountPortal } from '../../provisioning/server/portal/serve.js';

/** The built portal (npm run build), or a clear failure: a portal test without it proves nothing. */
function mountBuiltPortal(api: Parameters<typeof mountPortal>[0]): void {
  const { built } = mountPortal(api, { dir: defaultPortalDir(), log: silentLog() });
  if (!built) throw new Error(`the admin portal is not built in ${defaultPortalDir()}: run \`npm run build\``);
}

export interface Api {
  call<T = unknown>(
    method: string,
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T; text: string; headers: Headers }>;
  get<T = unknown>(url: string): Promise<T>;
  post<T = unknown>(url: string, body?: unknown): Promise<T>;
  patch<T = unknown>(url: string, body?: unknown): Promise<T>;
  put<T = unknown>(url: string, body?: unknown): Promise<T>;
}

export function apiClient(baseUrl: string, token: string | null): Api {
  const call = async <T>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) => {
    const isText = typeof body === 'string' || Buffer.isBuffer(body);
    const res = await fetch(`${baseUrl}${url}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'content-type': isText ? 'text/csv' : 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: isText ? (body as string) : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed as T, text, headers: res.headers };
  };
  const ok = async <T>(method: string, url: string, body?: unknown) => {
    const r = await call<T>(method, url, body);
    if (r.status >= 300) throw new Error(`${method} ${url} -> ${r.status}: ${r.text}`);
    return r.body;
  };
  return {
    call,
    get: (url) => ok('GET', url),
    post: (url, body) => ok('POST', url, body ?? {}),
    patch: (url, body) => ok('PATCH', url, body),
    put: (url, body) => ok('PUT', url, body),
  };
}

export interface TestServer {
  app: ServerApp;
  api: Api;
  token: string;
  dir: string;
  keys: KeyPairText;
  stop(): Promise<void>;
  /** Stops, then starts a new ServerApp on the same data folder and ports. */
  restart(): Promise<void>;
}

export async function startTestServer(
  over: Partial<ServerAppOptions> & { dir?: string; keys?: KeyPairText; portal?: boolean; streamCheckMs?: number } = {},
): Promise<TestServer> {
  const dir = over.dir ?? mkdtempSync(path.join(os.tmpdir(), 'e911-srv-'));
  const keys = over.keys ?? generateSigningKeyPair();
  const brokerPort = over.broker?.url ? 0 : (over.broker?.embeddedPort ?? (await freePort()));
  const httpPort = await freePort();
  const make = () =>
    new ServerApp({
      dataDir: dir,
      // E911_TEST_LOG=debug shows the server's log while debugging a test.
      log: over.log ?? (process.env.E911_TEST_LOG ? pino({ level: process.env.E911_TEST_LOG }, pino.destination(2)) : silentLog()),
      keyPair: keys,
      broker: { embeddedPort: brokerPort, ...over.broker },
      http: {
        port: httpPort,
        ...over.http,
        ...(over.portal ? { extend: (api) => mountBuiltPortal(api) } : {}),
        ...(over.streamCheckMs ? { streamCheckMs: over.streamCheckMs } : {}),
      },
      // The tests' SMS and webhook sinks listen on loopback, which a server refuses by default
      // (notify/targets.ts): allowed here, as an operator would name an internal relay.
      // A send to a local sink takes milliseconds: one stuck for 5 s is retried, not waited on.
      notify: { retry: { baseMs: 100, maxMs: 400, maxAttempts: 50 }, allowTargets: ['127.0.0.1'], sendTimeoutMs: 5_000, ...over.notify },
      ...(over.csvLimits ? { csvLimits: over.csvLimits } : {}),
      ...(over.pushWindow ? { pushWindow: over.pushWindow } : {}),
      ...(over.now ? { now: over.now } : {}),
      ...(over.store ? { store: over.store } : {}),
    });
  let app = make();
  await app.start();
  const token = await app.createToken('test');
  const t: TestServer = {
    app,
    api: apiClient(app.httpUrl, token),
    token,
    dir,
    keys,
    stop: async () => {
      await t.app.stop();
      if (!over.dir) rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await t.app.stop();
      app = make();
      await app.start();
      t.app = app;
    },
  };
  return t;
}

export const HQ = {
  code: 'SJC-A',
  name: 'Example Corp',
  address: { country: 'US', houseNumber: '100', street: 'Main St', city: 'San Jose', state: 'CA', postalCode: '95110', plus4: '1234' },
  building: 'A',
  floor: '2',
  room: '210',
  timeZone: 'America/Los_Angeles',
  ipGroups: [{ name: 'voice', cidrs: ['10.1.0.0/16', '2001:db8:1::/48'] }],
  adminEmails: ['security@example.com'],
  smsNumbers: ['+14085550199'],
};

export const BRANCH = {
  code: 'YYZ-1',
  name: 'Example Corp Toronto',
  address: { country: 'CA', houseNumber: '200', street: 'King St W', city: 'Toronto', state: 'ON', postalCode: 'M5H 3T4' },
  floor: '5',
  timeZone: 'America/Toronto',
  ipGroups: [{ name: 'lan', cidrs: ['10.2.0.0/16'] }],
  adminEmails: ['toronto-desk@example.com'],
};

/**
 * The server the chaos tests count at: quick notification retries and, with `setup`, the
 * account, HQ and a user (alice, two mail recipients with the account's) with this phone.
 */
export async function chaosServerApp(o: {
  dataDir: string;
  brokerUrl: string;
  httpPort: number;
  keyPair: KeyPairText;
  smtpPort: number;
  deviceId: string;
  setup: boolean;
}): Promise<ServerApp> {
  const app = new ServerApp({
    dataDir: o.dataDir,
    log: silentLog(),
    keyPair: o.keyPair,
    broker: { url: o.brokerUrl, protocolVersion: 5 },
    http: { port: o.httpPort },
    notify: { retry: { baseMs: 100, maxMs: 400, maxAttempts: 50 } },
  });
  if (o.setup) {
    const { service } = app;
    await service.updateAccount('test', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await service.setNotificationSettings('test', {
      smtp: { host: '127.0.0.1', port: o.smtpPort, security: 'none', from: 'e911@example.com' },
    });
    const hq = await service.createLocation('test', { ...HQ, smsNumbers: [] });
    await service.createUser('test', {
      username: 'alice',
      displayName: 'Alice',
      locationId: hq.id,
      callback: '+14085550100',
      deviceIds: [o.deviceId],
      emails: ['alice@example.com'],
    });
    await service.setE911('test', true);
  }
  return app;
}
