// Without credentials, every route of the admin HTTP server, in every spelling an attacker
// would try and with every method, answers 401, 404 or 405, except the short allow list of
// routes that carry PUBLIC_ROUTE. The routes come from the router's own table, so a route
// added tomorrow is attacked tomorrow without anyone editing this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server-app.js';
import { rawRequest } from '../helpers/raw-http.js';

const SAMPLE_PARAMS: Record<string, string> = { id: '1', deviceId: 'phone-1', file: 'app.js', name: 'x' };
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const DENIED = new Set([401, 404, 405]);
/** The allow list, as reviewed: anything else marked public is a finding. */
const EXPECTED_PUBLIC = [
  'DELETE /api/session',
  'GET /',
  'GET /api/health',
  'GET /api/openapi.json',
  'GET /portal',
  'GET /portal/:file',
  'POST /api/session',
];

const pct = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** The same target, spelled the ways a prefix check on the raw URL gets wrong. */
function spellings(p: string): Record<string, string> {
  const segs = p.split('/').slice(1);
  return {
    plain: p,
    'percent-first': `/${segs.map((s) => (/^[a-z]/i.test(s) ? pct(s[0]!) + s.slice(1) : s)).join('/')}`,
    'percent-all': p.replace(/[a-z0-9]/gi, pct),
    'absolute-form': `http://x${p}`,
    'absolute-form-port': `https://127.0.0.1:1${p}`,
    'dot-segment': `/x/..${p}`,
    'dot-inner': p.replace(/^\/api\//, '/api/./'),
    'double-slash': p.replace(/\//g, '//'),
    'upper-case': p.toUpperCase(),
    'title-case': p.replace(/\/([a-z])/g, (_m, c: string) => `/${c.toUpperCase()}`),
    'trailing-slash': `${p}/`,
    'matrix-param': `${p};a=1`,
    query: `${p}?token=x`,
    'encoded-slash': p.replace(/\//g, '%2F').replace(/^%2F/, '/'),
  };
}

describe('admin HTTP routes without credentials', () => {
  let srv: TestServer;
  let port: number;
  beforeAll(async () => {
    srv = await startTestServer({ portal: true });
    port = Number(new URL(srv.app.httpUrl).port);
  });
  afterAll(async () => srv?.stop());

  it('the allow list is exactly the reviewed one', () => {
    const pub = [
      ...new Set(
        srv.app
          .routes()
          .filter((r) => r.public && r.method !== 'HEAD')
          .map((r) => `${r.method} ${r.url}`),
      ),
    ].sort();
    expect(pub).toEqual(EXPECTED_PUBLIC);
  });

  it('with a token the same requests reach the handlers (the attack below is aimed at real routes)', async () => {
    const ok = await rawRequest(port, 'GET /api/users HTTP/1.1', { authorization: `Bearer ${srv.token}` });
    expect(ok.status).toBe(200);
    const denied = await rawRequest(port, 'GET /api/users HTTP/1.1');
    expect(denied.status).toBe(401);
  });

  it('no route answers anything but 401, 404 or 405 in any spelling or method, bad tokens and cookies included', async () => {
    const routes = srv.app.routes().filter((r) => !r.public);
    expect(routes.length).toBeGreaterThan(30);
    const publicPaths = new Set(
      srv.app
        .routes()
        .filter((r) => r.public)
        .map((r) => r.url),
    );
    const answered: string[] = [];
    let sent = 0;
    const paths = [...new Set(routes.map((r) => r.url))];
    for (const url of paths) {
      const p = url.replace(/:([A-Za-z]+)/g, (_m, name: string) => SAMPLE_PARAMS[name] ?? '1');
      for (const [how, target] of Object.entries(spellings(p))) {
        for (const method of METHODS) {
          const body = ['POST', 'PUT', 'PATCH'].includes(method) ? '{}' : '';
          const headers: Record<string, string> = body ? { 'content-type': 'application/json' } : {};
          const r = await rawRequest(port, `${method} ${target} HTTP/1.1`, headers, body);
          sent++;
          if (!DENIED.has(r.status)) answered.push(`${r.status} ${method} ${target} (${how})`);
        }
      }
      // Credentials that are not valid are no better than none.
      const badCredentials: Record<string, string>[] = [
        { authorization: 'Bearer nope' },
        { cookie: 'e911_session=nope' },
        { authorization: 'Basic YWRtaW46YWRtaW4=' },
      ];
      for (const headers of badCredentials) {
        const r = await rawRequest(port, `GET ${p} HTTP/1.1`, headers);
        sent++;
        if (!DENIED.has(r.status)) answered.push(`${r.status} GET ${p} with ${Object.keys(headers)[0]}`);
      }
    }
    // A public route's own path (same URL, another method) is not a finding; nothing here shares one.
    expect([...publicPaths].filter((u) => paths.includes(u))).toEqual([]);
    expect(sent).toBeGreaterThan(1000);
    expect(answered).toEqual([]);
  });

  it('the live event stream (911 call details) is refused in every spelling', async () => {
    for (const target of Object.values(spellings('/api/stream'))) {
      const r = await rawRequest(port, `GET ${target} HTTP/1.1`, { accept: 'text/event-stream' });
      expect(DENIED.has(r.status), `${r.status} for ${target}`).toBe(true);
      expect(r.head).not.toMatch(/text\/event-stream/i);
    }
  });
});
