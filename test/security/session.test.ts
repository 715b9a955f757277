// The portal's sessions, attacked: the cookie carries a random session id (never the API
// token) that the server stores only hashed; it is HttpOnly, SameSite=Strict, and Secure
// whenever the server is reached over TLS; it ends after 30 minutes idle, 12 hours in all,
// at logout and when its token is revoked; a change made with it must come from the portal's
// own origin; and guessing at the login is slowed per client address.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startTestServer, type TestServer } from '../helpers/server-app.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with exactly these headers (fetch would not let a test set Origin) from a chosen local address. */
function request(
  url: string,
  method: string,
  headers: Record<string, string> = {},
  body?: unknown,
  o: { localAddress?: string; ca?: Buffer } = {},
): Promise<Answer> {
  const u = new URL(url);
  const data = body === undefined ? undefined : JSON.stringify(body);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method,
        headers: { ...(data ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
        ...(o.ca ? { ca: o.ca } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const cookieOf = (a: Answer) => {
  const c = a.headers['set-cookie']?.[0];
  if (!c) throw new Error(`no cookie set (status ${a.status}: ${a.body})`);
  return c;
};
const sessionPair = (setCookie: string) => setCookie.split(';')[0]!;

describe('portal sessions', () => {
  let srv: TestServer;
  let base: string;
  let clock = new Date('2026-12-01T08:00:00Z');
  const login = (token: string, o: { localAddress?: string } = {}) => request(`${base}/api/session`, 'POST', {}, { token }, o);

  beforeAll(async () => {
    srv = await startTestServer({ now: () => clock, http: { port: 0, loginLimit: { max: 5, windowMs: 60_000 } } });
    base = srv.app.httpUrl;
  });
  afterAll(async () => srv?.stop());

  it('the cookie carries a random session id, stored only as its hash, with HttpOnly, SameSite=Strict and no Secure over plain HTTP', async () => {
    const a = cookieOf(await login(srv.token));
    const b = cookieOf(await login(srv.token));
    expect(a).toMatch(/^e911_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    const [idA, idB] = [a, b].map((c) => sessionPair(c).split('=')[1]!) as [string, string];
    expect(idA).not.toBe(idB);
    expect(a).not.toContain(srv.token);
    const db = new Database(srv.app.repo.path, { readonly: true });
    try {
      const stored = db.prepare('SELECT id_hash FROM admin_sessions').pluck().all() as string[];
      expect(stored).toContain(createHash('sha256').update(idA).digest('hex'));
      // Nowhere in the table is the id itself.
      expect(JSON.stringify(db.prepare('SELECT * FROM admin_sessions').all())).not.toContain(idA);
    } finally {
      db.close();
    }
    expect((await request(`${base}/api/account`, 'GET', { cookie: sessionPair(a) })).status).toBe(200);
  });

  it('logout revokes the session on the server, not only in the browser', async () => {
    const pair = sessionPair(cookieOf(await login(srv.token)));
    expect((await request(`${base}/api/account`, 'GET', { cookie: pair })).status).toBe(200);
    const out = await request(`${base}/api/session`, 'DELETE', { cookie: pair, origin: base });
    expect(out.headers['set-cookie']?.[0]).toMatch(/Max-Age=0/);
    // A copy of the cookie kept by an attacker is worth nothing now.
    expect((await request(`${base}/api/account`, 'GET', { cookie: pair })).status).toBe(401);
  });

  it('expires after 30 minutes idle and after 12 hours whatever the use', async () => {
    const idle = sessionPair(cookieOf(await login(srv.token)));
    const busy = sessionPair(cookieOf(await login(srv.token)));
    clock = new Date(clock.getTime() + 29 * 60_000);
    expect((await request(`${base}/api/account`, 'GET', { cookie: busy })).status).toBe(200);
    clock = new Date(clock.getTime() + 2 * 60_000);
    expect((await request(`${base}/api/account`, 'GET', { cookie: idle })).status).toBe(401);
    // Used every 20 minutes, the other one lives until 12 hours after login, not a minute more.
    for (let t = 31; t < 12 * 60 - 20; t += 20) {
      clock = new Date(clock.getTime() + 20 * 60_000);
      expect((await request(`${base}/api/account`, 'GET', { cookie: busy })).status, `at ${t + 20} min`).toBe(200);
    }
    clock = new Date(clock.getTime() + 20 * 60_000);
    expect((await request(`${base}/api/account`, 'GET', { cookie: busy })).status).toBe(401);
  });

  it('ends when its token is revoked', async () => {
    const token = await srv.app.createToken('temp');
    const pair = sessionPair(cookieOf(await login(token)));
    expect((await request(`${base}/api/account`, 'GET', { cookie: pair })).status).toBe(200);
    await srv.app.repo.revokeToken((await srv.app.repo.tokens()).find((t) => t.name === 'temp')!.id);
    expect((await request(`${base}/api/account`, 'GET', { cookie: pair })).status).toBe(401);
  });

  it('refuses cookie-authenticated changes from another origin or with no Origin; token requests are not affected', async () => {
    const pair = sessionPair(cookieOf(await login(srv.token)));
    const change = (headers: Record<string, string>) => request(`${base}/api/account`, 'PATCH', headers, { name: 'Changed Corp' });
    for (const origin of [undefined, 'null', 'http://evil.example', base.replace('127.0.0.1', 'localhost'), `${base}.evil.example`]) {
      const r = await change({ cookie: pair, ...(origin ? { origin } : {}) });
      expect(r.status, `origin ${origin}`).toBe(403);
    }
    // Also a POST made the way a cross-site form would (no JSON content type).
    const form = await request(`${base}/api/phones/desk-9/credentials`, 'POST', {
      cookie: pair,
      origin: 'http://evil.example',
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(403);
    expect((await srv.api.get<{ name: string }>('/api/account')).name).not.toBe('Changed Corp');
    // From the portal's own origin it goes through; reads need no Origin.
    expect((await change({ cookie: pair, origin: base })).status).toBe(200);
    expect((await request(`${base}/api/account`, 'GET', { cookie: pair, origin: 'http://evil.example' })).status).toBe(200);
    // A Bearer token is never added by a browser on its own: no Origin check.
    expect(
      (
        await request(
          `${base}/api/account`,
          'PATCH',
          { authorization: `Bearer ${srv.token}`, origin: 'http://evil.example' },
          { name: 'Example Corp' },
        )
      ).status,
    ).toBe(200);
  });

  it('slows down guessing: after 5 failed logins an address gets 429, even with the right token; other addresses are unaffected', async () => {
    const from = { localAddress: '127.0.0.2' };
    for (let i = 0; i < 5; i++) expect((await login(`e911_guess${i}`, from)).status).toBe(401);
    const blocked = await login(srv.token, from);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(blocked.headers['set-cookie']).toBeUndefined();
    expect((await login(srv.token, { localAddress: '127.0.0.3' })).status).toBe(200);
  });
});

describe('portal sessions over HTTPS', () => {
  let dir: string;
  let srv: TestServer;
  let ca: Buffer;

  beforeAll(async () => {
    // A certificate made by the test for 127.0.0.1, trusted by this test's client only.
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    ca = readFileSync(path.join(dir, 'cert.pem'));
    srv = await startTestServer({ http: { port: 0, tls: { key: readFileSync(path.join(dir, 'key.pem')), cert: ca } } });
  });
  afterAll(async () => {
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the API over TLS and marks the session cookie Secure', async () => {
    expect(srv.app.httpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await request(`${srv.app.httpUrl}/api/session`, 'POST', {}, { token: srv.token }, { ca });
    expect(r.status).toBe(200);
    expect(cookieOf(r)).toMatch(/; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200; Secure$/);
    const pair = sessionPair(cookieOf(r));
    const origin = srv.app.httpUrl;
    expect((await request(`${origin}/api/account`, 'PATCH', { cookie: pair, origin }, { name: 'TLS Corp' }, { ca })).status).toBe(200);
    // The plain-HTTP spelling of the same host is another origin.
    expect(
      (await request(`${origin}/api/account`, 'PATCH', { cookie: pair, origin: origin.replace('https:', 'http:') }, { name: 'x' }, { ca }))
        .status,
    ).toBe(403);
    // A client that does not trust the certificate does not get in at all.
    await expect(request(`${origin}/api/health`, 'GET')).rejects.toThrow(/self-signed|self signed|certificate/i);
  });
});
