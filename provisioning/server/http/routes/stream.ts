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
    (req, reply) => streamEvents(req, reply, deps.bus, req.accountId, req.stillAuthorized, deps.streamCheckMs ?? 15_000),
  );
};

/**
 * Server-sent events until the client goes or its token is revoked: a stream outlives the
 * request that opened it, so the token is checked again with every keep-alive.
 */
function streamEvents(
  req: FastifyRequest,
  reply: FastifyReply,
  bus: Bus,
  accountId: string,
  stillAllowed: () => Promise<boolean>,
  checkMs: number,
): void {
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
    // Only the happenings of the stream's own account.
    const fn = (payload: unknown) => {
      if (bus.emittingAccount === accountId) res.write(`event: ${kind}\ndata: ${JSON.stringify(payload)}\n\n`);
    };
    bus.on(kind, fn as never);
    return [kind, fn] as const;
  });
  const close = () => {
    closed = true;
    clearInterval(ping);
    for (const [kind, fn] of listeners) bus.off(kind, fn as never);
  };
  let closed = false;
  const end = (why: string) => {
    if (closed) return;
    close();
    res.end(why);
  };
  const ping = setInterval(() => {
    stillAllowed().then(
      (ok) => {
        if (closed) return;
        if (ok) res.write(': ping\n\n');
        else end('event: revoked\ndata: {}\n\n');
      },
      // The store could not say: the stream ends (the portal reconnects, and is checked again).
      (err: unknown) => {
        req.log.warn({ err }, 'event stream: could not check its session');
        end('');
      },
    );
  }, checkMs);
  req.raw.on('close', close);
}
