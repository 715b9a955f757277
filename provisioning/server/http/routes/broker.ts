// The Mosquitto files (password file, ACL, conf lines) for the current phones.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';
import { tag } from '../schemas.js';

export const brokerRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { records, brokerConfig }) => {
  app.get(
    '/api/broker/mosquitto',
    { schema: { ...tag('broker'), summary: 'Mosquitto password file, ACL and mosquitto.conf lines for the current phones' } },
    async (req) => {
      await records.noteBrokerConfigRead(req.actor);
      return brokerConfig();
    },
  );
};
