// The Mosquitto files (password file, ACL, conf lines) for the current phones.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';
import { tag } from '../schemas.js';
import { PROVIDER_ROUTE } from '../public.js';

export const brokerRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { records, brokerConfig }) => {
  app.get(
    '/api/broker/mosquitto',
    {
      ...PROVIDER_ROUTE,
      schema: {
        ...tag('broker'),
        summary: "Mosquitto password file, ACL and mosquitto.conf lines for every account's phones (a provider token only)",
      },
    },
    async (req) => {
      await records.noteBrokerConfigRead(req.actor);
      return brokerConfig();
    },
  );
};
