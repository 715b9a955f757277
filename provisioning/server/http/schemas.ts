// Shared pieces of the route schemas (JSON Schema for the OpenAPI document) and query parsing.
import { z } from 'zod';
import { ValidationError } from '../errors.js';

/** JSON Schema of a zod schema, for the OpenAPI document (validation itself is zod's, in the service). */
export function js(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

export const tag = (t: string) => ({ tags: [t] });

export const idParam = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] } as const;
export const deviceParam = { type: 'object', properties: { deviceId: { type: 'string' } }, required: ['deviceId'] } as const;
export const errorSchema = {
  type: 'object',
  properties: {
    error: { type: 'string', description: 'invalid | not-found | conflict | precondition | too-large | unauthorized | internal' },
    message: { type: 'string' },
    issues: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, reason: { type: 'string' } } } },
    missing: { type: 'array', items: { type: 'string' } },
  },
};
export const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    kind: { type: 'string', enum: ['bulk-emails', 'csv-apply'] },
    status: { type: 'string', enum: ['queued', 'running', 'done', 'failed'] },
    total: { type: 'integer' },
    done: { type: 'integer' },
    result: { type: 'object', properties: { updated: { type: 'integer' }, unchanged: { type: 'integer' }, missing: { type: 'integer' } } },
    error: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    startedAt: { type: ['string', 'null'] },
    finishedAt: { type: ['string', 'null'] },
  },
};
export const csvReportSchema = {
  type: 'object',
  properties: {
    uploadId: { type: ['string', 'null'] },
    rows: { type: 'integer' },
    changes: { type: 'integer' },
    unchanged: { type: 'integer' },
    errorCount: { type: 'integer' },
    errors: {
      type: 'array',
      items: { type: 'object', properties: { row: { type: 'integer' }, column: { type: 'string' }, reason: { type: 'string' } } },
    },
  },
};
export const E: Record<number, object> = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema };

/** A whole non-negative number from the query string, or undefined when absent. */
export const intQuery = (v: unknown): number | undefined => {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ValidationError([{ field: 'query', reason: `${JSON.stringify(v)} is not a whole number` }]);
  return n;
};

/** The numeric :id of a route whose params schema is idParam (the validator is off: zod validates bodies in the service). */
export const idOf = (params: unknown): number => Number((params as { id: string }).id);
export const deviceOf = (params: unknown): string => (params as { deviceId: string }).deviceId;
