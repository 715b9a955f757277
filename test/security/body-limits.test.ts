// Request bodies are bounded per route: 64 KiB unless a route's own schema allows more (a
// location's CIDRs, a bulk job's user ids), the login 4 KiB, and only the CSV upload takes
// megabytes. Every route that takes a body comes from the router's own table, so a route
// added tomorrow is checked tomorrow. A large body of another content type (the CSV parser's)
// sent to any other route gets no more room than JSON.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { startTestServer, type TestServer } from '../helpers/server-app.js';
import { BODY_LIMITS } from '../../provisioning/server/http/api.js';

const CSV_MAX = 2 * 1024 * 1024;
const SAMPLE_PARAMS: Record<string, string> = { id: '1', deviceId: 'phone-1' };

/** The limit each route should have: the default unless listed. */
function expectedLimit(method: string, url: string): number {
  if (url === '/api/csv/users/validate') return CSV_MAX;
  if (url === '/api/session' && method === 'POST') return BODY_LIMITS.login;
  if (url === '/api/bulk/emails') return BODY_LIMITS.bulk;
  if (url === '/api/locations' || url === '/api/locations/validate' || (url === '/api/locations/:id' && method === 'PATCH'))
    return BODY_LIMITS.location;
  return BODY_LIMITS.default;
}

function send(
  port: number,
  method: string,
  path: string,
  body: Buffer,
  headers: Record<string, string>,
  chunked = false,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { ...headers, ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.length) }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    // The server may answer 413 and close before reading it all: that is the point.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)));
    if (chunked) {
      for (let i = 0; i < body.length; i += 16 * 1024) req.write(body.subarray(i, i + 16 * 1024));
      req.end();
    } else req.end(body);
  });
}

/** A JSON body of exactly n bytes: {"pad":"xxx..."}. */
const jsonOf = (n: number) => Buffer.from(`{"pad":"${'x'.repeat(n - 10)}"}`);

describe('request body limits', () => {
  let srv: TestServer;
  let port: number;
  let auth: Record<string, string>;

  beforeAll(async () => {
    srv = await startTestServer({ csvLimits: { maxBytes: CSV_MAX, maxRows: 100_000, maxReportedErrors: 1000 } });
    port = Number(new URL(srv.app.httpUrl).port);
    auth = { authorization: `Bearer ${srv.token}` };
  });
  afterAll(async () => srv?.stop());

  it('every route that takes a body refuses one past its limit with 413, and takes one at the limit', async () => {
    const routes = srv.app.routes().filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method));
    expect(routes.length).toBeGreaterThan(15);
    const wrong: string[] = [];
    for (const r of routes) {
      const path = r.url.replace(/:([A-Za-z]+)/g, (_m, name: string) => SAMPLE_PARAMS[name] ?? '1');
      const limit = expectedLimit(r.method, r.url);
      const isCsv = r.url === '/api/csv/users/validate';
      const type = { 'content-type': isCsv ? 'text/csv' : 'application/json' };
      const over = await send(port, r.method, path, isCsv ? Buffer.alloc(limit + 1, 'a') : jsonOf(limit + 1), { ...auth, ...type });
      if (over.status !== 413) wrong.push(`${r.method} ${r.url}: ${limit + 1} bytes -> ${over.status}`);
      // At the limit the body is read (whatever the handler then thinks of it).
      const at = await send(port, r.method, path, isCsv ? Buffer.alloc(limit, 'a') : jsonOf(limit), { ...auth, ...type });
      if (at.status === 413) wrong.push(`${r.method} ${r.url}: ${limit} bytes -> 413`);
    }
    expect(wrong).toEqual([]);
  });

  it('the 413 says the limit', async () => {
    const r = await send(port, 'PATCH', '/api/account', jsonOf(BODY_LIMITS.default + 1), { ...auth, 'content-type': 'application/json' });
    expect(JSON.parse(r.body)).toEqual({ error: 'too-large', message: 'the request body is larger than the 64 KiB limit' });
  });

  it("the CSV parser's content types get no more room on other routes", async () => {
    for (const type of ['text/csv', 'application/csv', 'text/plain', 'application/octet-stream']) {
      const r = await send(port, 'POST', '/api/users', Buffer.alloc(BODY_LIMITS.default + 1, 'a'), { ...auth, 'content-type': type });
      expect(r.status, type).toBe(413);
    }
  });

  it('a chunked body (no Content-Length) is cut at the limit too', async () => {
    const r = await send(port, 'POST', '/api/users', jsonOf(256 * 1024), { ...auth, 'content-type': 'application/json' }, true);
    expect(r.status).toBe(413);
    const csv = await send(
      port,
      'POST',
      '/api/csv/users/validate',
      Buffer.alloc(CSV_MAX + 64 * 1024, 'a'),
      { ...auth, 'content-type': 'text/csv' },
      true,
    );
    expect(csv.status).toBe(413);
  });

  it('without a token a large body is refused before it is read: 401, not 413', async () => {
    const r = await send(port, 'POST', '/api/csv/users/validate', Buffer.alloc(CSV_MAX - 1, 'a'), { 'content-type': 'text/csv' });
    expect(r.status).toBe(401);
    const login = await send(port, 'POST', '/api/session', jsonOf(BODY_LIMITS.login + 1), { 'content-type': 'application/json' });
    expect(login.status).toBe(413);
  });
});
