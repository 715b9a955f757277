// The portal's file serving: only the built files, with an ETag and the
// security headers; a clear 503 when the portal was never built.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { mountPortal } from '../../provisioning/server/portal/serve.js';
import { recordingLog } from '../helpers/log.js';

describe('portal file serving', () => {
  let app: FastifyInstance;
  let dir: string;
  afterEach(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function built(): string {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-portal-files-'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>x</title><script type="module" src="/portal/app.js"></script>');
    writeFileSync(path.join(dir, 'app.js'), 'console.log(1)');
    writeFileSync(path.join(dir, 'app.css'), 'body{}');
    return dir;
  }

  it('serves the shell, script and stylesheet with their types, CSP and an ETag that answers 304', async () => {
    app = Fastify();
    const { log } = recordingLog();
    expect(mountPortal(app, { dir: built(), log }).built).toBe(true);
    const page = await app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const js = await app.inject({ url: '/portal/app.js' });
    expect(js.headers['content-type']).toContain('text/javascript');
    expect(js.body).toBe('console.log(1)');
    expect((await app.inject({ url: '/portal/app.css' })).headers['content-type']).toContain('text/css');
    const again = await app.inject({ url: '/portal/app.js', headers: { 'if-none-match': String(js.headers.etag) } });
    expect(again.statusCode).toBe(304);
  });

  it('serves nothing but its own files: other names and traversal attempts are 404', async () => {
    app = Fastify();
    mountPortal(app, { dir: built(), log: recordingLog().log });
    for (const url of ['/portal/other.js', '/portal/..%2findex.html', '/portal/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/portal/index.html.bak']) {
      expect((await app.inject({ url })).statusCode, url).toBe(404);
    }
  });

  it('answers 503 with how to build it, and logs a warning, when the portal is not built', async () => {
    app = Fastify();
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-portal-none-'));
    const { log, lines } = recordingLog();
    expect(mountPortal(app, { dir, log }).built).toBe(false);
    const r = await app.inject({ url: '/' });
    expect(r.statusCode).toBe(503);
    expect(r.body).toContain('npm run build');
    expect(lines().some((l) => String(l.msg).includes('not built'))).toBe(true);
  });
});
