// Prints the admin API's OpenAPI document as a server started with `e911-server run`
// serves it, without a running server: a throwaway server on a temporary data folder and
// free loopback ports. docs/server-openapi.json is this output; a test keeps them equal.
//
//   node dist/scripts/dev/openapi.js > docs/server-openapi.json
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { ServerApp } from '../../provisioning/server/app.js';
import { defaultPortalDir, mountPortal } from '../../provisioning/server/portal/serve.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { isMain } from '../../provisioning/common/is-main.js';

/** The document /api/openapi.json serves, with the portal mounted as `run` mounts it. */
export async function servedOpenApi(): Promise<unknown> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-openapi-'));
  const log = pino({ level: 'silent' });
  const app = new ServerApp({
    dataDir: dir,
    log,
    keyPair: generateSigningKeyPair(),
    broker: { embeddedPort: 0 },
    http: { port: 0, extend: (api) => void mountPortal(api, { dir: defaultPortalDir(), log }) },
  });
  try {
    await app.start();
    const res = await fetch(`${app.httpUrl}/api/openapi.json`);
    if (res.status !== 200) throw new Error(`/api/openapi.json answered ${res.status}`);
    return (await res.json()) as unknown;
  } finally {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The text docs/server-openapi.json holds: two-space JSON and a final newline. */
export function openApiText(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

if (isMain(import.meta.url)) {
  process.stdout.write(openApiText(await servedOpenApi()));
}
