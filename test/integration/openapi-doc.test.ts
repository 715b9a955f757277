// docs/server-openapi.json is the document the server serves: a route added, removed or
// re-described (the security work changed several) shows up here until the file is regenerated.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openApiText, servedOpenApi } from '../../scripts/dev/openapi.js';

describe('docs/server-openapi.json', () => {
  it('equals the document /api/openapi.json serves (regenerate: node dist/scripts/dev/openapi.js > docs/server-openapi.json)', async () => {
    const served = await servedOpenApi();
    const kept = readFileSync(new URL('../../docs/server-openapi.json', import.meta.url), 'utf8');
    expect(JSON.parse(kept)).toEqual(served);
    // Byte for byte too, so the file is what the command prints (no hand edits that happen to parse the same).
    expect(kept).toBe(openApiText(served));
  });

  it('documents every route the API answers except the hidden ones', async () => {
    const doc = (await servedOpenApi()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented).toContain('GET /api/stream');
    expect(documented).toContain('DELETE /api/session');
    // Path parameters in OpenAPI form, not fastify's.
    expect(documented.some((d) => d.includes('/:'))).toBe(false);
  });
});
