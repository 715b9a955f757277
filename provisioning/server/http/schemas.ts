// Shared pieces of the route schemas: zod schemas that fastify validates requests with (the
// zod type provider) and that the OpenAPI document is generated from.
import { z } from 'zod';
import type { FastifyError } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { ValidationError } from '../errors.js';
import type { Issue } from '../validation.js';
import type { NotificationStatus } from '../db/types.js';

export const tag = (t: string) => ({ tags: [t] });

/** A path's numeric :id (path parameters arrive as text). */
export const idParam = z.object({ id: z.coerce.number().int().positive() });
export const deviceParam = z.object({ deviceId: z.string() });

/**
 * A whole non-negative number in the query string; absent or empty is undefined. Kept as text
 * up to the transform so that an empty value is not read as 0.
 */
export const wholeNumberQuery = z
  .string()
  .regex(/^\d{0,15}$/, 'must be a whole number')
  .transform((s) => (s === '' ? undefined : Number(s)))
  .optional();

export const NOTIFICATION_STATUSES = ['pending', 'sending', 'retry', 'sent', 'failed'] as const satisfies readonly NotificationStatus[];

export const errorSchema = z.looseObject({
  error: z.string().describe('invalid | not-found | conflict | precondition | too-large | unauthorized | internal'),
  message: z.string(),
  issues: z.array(z.object({ field: z.string(), reason: z.string() })).optional(),
  missing: z.array(z.string()).optional(),
});

// A response schema lists every field the service returns: the serializer drops any it does not name.
export const jobSchema = z.object({
  id: z.number().int(),
  kind: z.string().describe('bulk-emails | csv-apply'),
  status: z.enum(['queued', 'running', 'done', 'failed']),
  actor: z.string(),
  params: z.unknown(),
  total: z.number().int(),
  done: z.number().int(),
  result: z.unknown().describe('when done: {updated, unchanged, missing}'),
  error: z.string().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export const csvReportSchema = z.object({
  uploadId: z.string().nullable(),
  rows: z.number().int(),
  changes: z.number().int(),
  unchanged: z.number().int(),
  errorCount: z.number().int(),
  errors: z.array(z.object({ row: z.number().int(), column: z.string(), reason: z.string() })),
});
/** A 201 or 202 answer documented by its summary; a 204 has no body. */
export const accepted = (what: string) => z.unknown().describe(what);
export const noContent = z.null().describe('no content');
export const E = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema } as const;
/** E for a route that answers 200 with what its service returns (not described field by field yet). */
export const OK = { 200: z.unknown(), ...E } as const;

/**
 * The schemas the OpenAPI document names once under components (each route refers to them)
 * rather than repeating them inline in every route that answers with them.
 */
export function namedSchemas(): z.core.$ZodRegistry<{ id: string }> {
  const named = z.registry<{ id: string }>();
  named.add(errorSchema, { id: 'Error' });
  named.add(jobSchema, { id: 'Job' });
  named.add(csvReportSchema, { id: 'CsvReport' });
  return named;
}

/**
 * The document's components without those no route refers to: the type provider names each
 * schema twice, as a request (…Input) and as a response, and these are only ever responses.
 */
export function withoutUnusedComponents<D extends { paths?: unknown; components?: { schemas?: Record<string, unknown> } }>(doc: D): D {
  const schemas = doc.components?.schemas;
  if (!schemas) return doc;
  const used = new Set([...JSON.stringify(doc.paths ?? {}).matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]));
  const kept = Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name)));
  return { ...doc, components: { ...doc.components, schemas: kept } };
}

/**
 * A request that failed its route schema, as the same ValidationError the services throw
 * (one error shape whichever layer refused it); undefined for any other error.
 */
export function requestValidationError(err: unknown): ValidationError | undefined {
  if (!hasZodFastifySchemaValidationErrors(err)) return undefined;
  const context = (err as FastifyError).validationContext ?? 'body';
  const issues: Issue[] = err.validation.map((v) => ({
    field: v.instancePath.slice(1).replaceAll('/', '.') || `(${context})`,
    reason: v.message ?? 'is invalid',
  }));
  return new ValidationError(issues);
}
