// Bulk changes: email lists for many users, CSV export and upload, and the jobs that apply them.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';
import { csvReportSchema, E, errorSchema, idParam, jobSchema, tag } from '../schemas.js';
import { BODY_LIMITS } from '../deps.js';
import { ValidationError } from '../../errors.js';
import { CSV_APPLY_MODES, type CsvReport } from '../../bulk.js';
import { bulkEmailsSchema } from '../../validation.js';

export const bulkRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { bulk, records }) => {
  app.post(
    '/api/bulk/emails',
    {
      bodyLimit: BODY_LIMITS.bulk,
      schema: {
        ...tag('bulk'),
        summary: "Replace the notification emails of all users, one location's users, or selected users: a background job",
        body: bulkEmailsSchema,
        response: { 202: jobSchema, ...E },
      },
    },
    async (req, reply) => reply.code(202).send(await bulk.queueBulkEmails(req.actor, req.body)),
  );
  app.get(
    '/api/jobs',
    { schema: { ...tag('bulk'), summary: 'Recent jobs', response: { 200: z.array(jobSchema) } } },
    async () => await records.jobs(),
  );
  app.get(
    '/api/jobs/:id',
    { schema: { ...tag('bulk'), summary: "A job's progress and result", params: idParam, response: { 200: jobSchema, ...E } } },
    async (req) => await records.job(req.params.id),
  );
  app.get(
    '/api/csv/users',
    {
      schema: {
        ...tag('bulk'),
        summary: 'CSV of all users: reference columns and Email1..Email10 (formulas neutralised)',
        produces: ['text/csv'],
      },
    },
    async (_req, reply) =>
      reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="e911-users-${new Date().toISOString().slice(0, 10)}.csv"`)
        .send(await bulk.exportCsv()),
  );
  app.post(
    '/api/csv/users/validate',
    {
      // The one route that takes a large body: the CSV file, bounded by the CSV limits.
      bodyLimit: bulk.limits.maxBytes,
      schema: {
        ...tag('bulk'),
        summary: 'Upload a CSV (Content-Type: text/csv) and get a validation report; nothing is applied. Only Email columns count.',
        consumes: ['text/csv'],
        response: { 200: csvReportSchema, ...E, 413: errorSchema },
      },
    },
    async (req): Promise<CsvReport> => {
      // No body schema: the CSV parser hands over the raw bytes, a JSON body arrives parsed.
      if (!Buffer.isBuffer(req.body))
        throw new ValidationError([{ field: 'body', reason: 'send the CSV file as the body with Content-Type: text/csv' }]);
      return await bulk.validateCsv(req.actor, req.body);
    },
  );
  app.post(
    '/api/csv/uploads/:id/apply',
    {
      schema: {
        ...tag('bulk'),
        summary:
          'Apply a validated upload as a background job: mode valid-rows (the default) applies the valid rows and skips the others; all-or-nothing applies nothing while any row is wrong (409 saying so). The job result says which was done.',
        params: z.object({ id: z.string() }),
        body: z
          .object({ mode: z.enum(CSV_APPLY_MODES).optional() })
          .strict()
          .nullish(),
        response: { 202: jobSchema, ...E },
      },
    },
    async (req, reply) => reply.code(202).send(await bulk.queueCsvApply(req.actor, req.params.id, req.body?.mode)),
  );
};
