// The account: settings, E911 on or off, and the notification channels.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { E, js, tag } from '../schemas.js';
import { ValidationError } from '../../errors.js';
import { accountPatchSchema, notificationSettingsSchema } from '../../validation.js';

export const accountRoutes: FastifyPluginAsync<ApiDeps> = async (app, { service, records }) => {
  app.get(
    '/api/account',
    { schema: { ...tag('account'), summary: 'Account settings, E911 state and what is missing to enable it' } },
    async () => service.account(),
  );
  app.patch(
    '/api/account',
    {
      schema: {
        ...tag('account'),
        summary:
          'Change the account name, contact, recommendation override, notification policy, or the company defaults (address, callback number, emergency contacts: each used wherever a user or location has none of its own; null removes one)',
        body: js(accountPatchSchema),
        response: E,
      },
    },
    async (req) => service.updateAccount(req.actor, req.body),
  );
  app.post(
    '/api/account/e911',
    {
      schema: {
        ...tag('account'),
        summary: 'Enable or disable E911 (enabling needs the mandatory information; 409 lists what is missing)',
        body: { type: 'object', properties: { enabled: { type: 'boolean' } }, required: ['enabled'] },
        response: E,
      },
    },
    async (req) => {
      const enabled = (req.body as { enabled?: unknown } | null)?.enabled;
      if (typeof enabled !== 'boolean') throw new ValidationError([{ field: 'enabled', reason: 'must be true or false' }]);
      return service.setE911(req.actor, enabled);
    },
  );
  app.get(
    '/api/account/notifications',
    { schema: { ...tag('notifications'), summary: 'SMTP, SMS and webhook settings (secrets shown only as set or not)' } },
    async () => service.notificationSettings(),
  );
  app.put(
    '/api/account/notifications',
    {
      schema: {
        ...tag('notifications'),
        summary: 'Set channels: each given channel replaces the stored one, null removes it, an omitted password is kept',
        body: js(notificationSettingsSchema),
        response: E,
      },
    },
    async (req) => service.setNotificationSettings(req.actor, req.body),
  );
  app.post(
    '/api/account/notifications/test',
    {
      schema: {
        ...tag('notifications'),
        summary: 'Send a test notification now through one channel and report the outcome',
        body: {
          type: 'object',
          properties: { channel: { type: 'string', enum: ['email', 'sms', 'webhook'] }, to: { type: 'string' } },
          required: ['channel'],
        },
      },
    },
    async (req) => records.testNotification(req.actor, req.body),
  );
};
