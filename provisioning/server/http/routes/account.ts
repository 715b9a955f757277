// The account: settings, E911 on or off, and the notification channels.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';
import { OK, tag } from '../schemas.js';
import { accountPatchSchema, notificationSettingsSchema } from '../../validation.js';
import { testNotificationSchema } from '../../records.js';

export const accountRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { service, records }) => {
  app.get(
    '/api/account',
    {
      schema: {
        ...tag('account'),
        summary: "Account settings, E911 state and what is missing to enable it; provider: whether the caller's token is the provider's",
      },
    },
    async (req) => ({ ...(await service.account()), provider: req.provider }),
  );
  app.patch(
    '/api/account',
    {
      schema: {
        ...tag('account'),
        summary:
          'Change the account name, contact, recommendation override, notification policy, or the company defaults (address, callback number, emergency contacts: each used wherever a user or location has none of its own; null removes one)',
        body: accountPatchSchema,
        response: OK,
      },
    },
    async (req) => await service.updateAccount(req.actor, req.body),
  );
  app.post(
    '/api/account/e911',
    {
      schema: {
        ...tag('account'),
        summary: 'Enable or disable E911 (enabling needs the mandatory information; 409 lists what is missing)',
        body: z.object({ enabled: z.boolean({ error: 'must be true or false' }) }),
        response: OK,
      },
    },
    async (req) => await service.setE911(req.actor, req.body.enabled),
  );
  app.get(
    '/api/account/notifications',
    {
      schema: { ...tag('notifications'), summary: 'SMTP, SMS, webhook and security-desk call settings (secrets shown only as set or not)' },
    },
    async () => await service.notificationSettings(),
  );
  app.put(
    '/api/account/notifications',
    {
      schema: {
        ...tag('notifications'),
        summary: 'Set channels: each given channel replaces the stored one, null removes it, an omitted password is kept',
        body: notificationSettingsSchema,
        response: OK,
      },
    },
    async (req) => await service.setNotificationSettings(req.actor, req.body),
  );
  app.post(
    '/api/account/notifications/test',
    {
      schema: {
        ...tag('notifications'),
        summary: 'Send a test notification now through one channel and report the outcome',
        body: testNotificationSchema,
      },
    },
    async (req) => await records.testNotification(req.actor, req.body),
  );
};
