// Serves the admin portal (built by scripts/build-portal.mjs into dist/portal)
// beside the admin API: the page shell at /, its script and stylesheet under
// /portal/. The files are read once at start; they are small and never change
// while the server runs. Authentication is the API's: the page logs in with a
// token and holds it as the HttpOnly session cookie.
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PUBLIC_ROUTE } from '../http/public.js';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

/** dist/portal, found from this module's own place in dist/ (or in the source tree under test). */
export function defaultPortalDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const fromDist = path.resolve(here, '../../../portal');
  const fromSource = path.resolve(here, '../../../dist/portal');
  return existsSync(path.join(fromDist, 'app.js')) ? fromDist : fromSource;
}

const TYPES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'app.js.map': 'application/json',
  'app.css.map': 'application/json',
  'app.js.LEGAL.txt': 'text/plain; charset=utf-8',
};

// The page loads only its own script and style and talks only to its own origin.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; media-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

export interface PortalOptions {
  dir: string;
  log: Logger;
}

export function mountPortal(app: FastifyInstance, { dir, log }: PortalOptions): { built: boolean } {
  const index = path.join(dir, 'index.html');
  if (!existsSync(index) || !existsSync(path.join(dir, 'app.js'))) {
    log.warn({ dir }, 'admin portal not built (npm run build): / answers 503');
    app.get('/', { ...PUBLIC_ROUTE, schema: { hide: true } }, async (_req, reply) =>
      reply.code(503).type('text/plain').send(`The admin portal is not built. Run \`npm run build\`; looked in ${dir}.\n`),
    );
    return { built: false };
  }
  const files = new Map<string, { body: Buffer; etag: string; type: string }>();
  const load = (name: string, file: string, type: string) => {
    const body = readFileSync(file);
    files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  };
  load('index.html', index, 'text/html; charset=utf-8');
  for (const [name, type] of Object.entries(TYPES)) if (existsSync(path.join(dir, name))) load(name, path.join(dir, name), type);

  const send =
    (name: string) => async (req: { headers: Record<string, string | string[] | undefined> }, reply: import('fastify').FastifyReply) => {
      const f = files.get(name);
      if (!f) return reply.code(404).type('text/plain').send('not found\n');
      reply.headers({ ...SECURITY_HEADERS, etag: f.etag, 'cache-control': 'no-cache', 'content-type': f.type });
      if (req.headers['if-none-match'] === f.etag) return reply.code(304).send();
      return reply.send(f.body);
    };
  // Not API: kept out of the OpenAPI document.
  const hide = { ...PUBLIC_ROUTE, schema: { hide: true } };
  app.get('/', hide, send('index.html'));
  app.get('/portal', hide, async (_req, reply) => reply.redirect('/'));
  app.get('/portal/:file', hide, async (req, reply) => send((req.params as { file: string }).file)(req, reply));
  log.info({ dir }, 'admin portal mounted at /');
  return { built: true };
}
