// The live event stream (server-sent events) the portal listens to.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';
import { tag } from '../schemas.js';
import type { Bus, BusEvents } from '../../bus.js';

export const streamRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.get(
    '/api/stream',
    { schema: { ...tag('meta'), summary: 'Server-sent events: emergency, event, phone, job, notification, change' } },
    (req, reply) => streamEvents(req, reply, deps.bus, req.stillAuthorized, deps.streamCheckMs ?? 15_000),
  );
};

/**
 * Server-sent events until the client goes or its token is revoked: a stream outlives the
 * request that opened it, so the token is checked again with every keep-alive.
 */
function streamEvents(req: FastifyRequest, reply: FastifyReply, bus: Bus, stillAllowed: () => boolean, checkMs: number): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(': e911 event stream\n\n');
  const kinds: (keyof BusEvents)[] = ['emergency', 'event', 'phone', 'job', 'notification', 'change'];
  const listeners = kinds.map((kind) => {
    const fn = (payload: unknown) => res.write(`event: ${kind}\ndata: ${JSON.stringify(payload)}\n\n`);
    bus.on(kind, fn as never);
    return [kind, fn] as const;
  });
  const close = () => {
    clearInterval(ping);
    for (const [kind, fn] of listeners) bus.off(kind, fn as never);
  };
  const ping = setInterval(() => {
    if (stillAllowed()) return void res.write(': ping\n\n');
    close();
    res.end('event: revoked\ndata: {}\n\n');
  }, checkMs);
  req.raw.on('close', close);
}
