// The admin API's route schemas: fastify validates path, query and body with the routes' zod
// schemas before a handler runs, and a refused request answers as the services' own
// ValidationError does ({error: 'invalid', message, issues[{field, reason}]}). A partial update
// changes only the fields it names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, HQ, apiClient, type TestServer } from '../helpers/server-app.js';

interface Refusal {
  error: string;
  message: string;
  issues: { field: string; reason: string }[];
}

describe('admin API route schemas', () => {
  let srv: TestServer;
  let hqId: number;
  let userId: number;

  beforeAll(async () => {
    srv = await startTestServer();
    hqId = (await srv.api.post<{ id: number }>('/api/locations', HQ)).id;
    userId = (
      await srv.api.post<{ id: number }>('/api/users', {
        username: 'ana',
        displayName: 'Ana Diaz',
        locationId: hqId,
        language: 'fr-CA',
        emails: ['ana@example.com'],
      })
    ).id;
  });
  afterAll(async () => {
    await srv?.stop();
  });

  it('refuses a path parameter that is not a positive whole number, naming it', async () => {
    const r = await srv.api.call<Refusal>('GET', '/api/users/abc');
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid');
    expect(r.body.issues.map((i) => i.field)).toEqual(['id']);
    expect((await srv.api.call('DELETE', '/api/locations/0')).status).toBe(400);
  });

  it('refuses query values against their schema, naming the parameter', async () => {
    const limit = await srv.api.call<Refusal>('GET', '/api/events?limit=ten');
    expect(limit.status).toBe(400);
    expect(limit.body.issues).toEqual([{ field: 'limit', reason: 'must be a whole number' }]);
    expect(limit.body.message).toBe('invalid input: limit must be a whole number');
    const status = await srv.api.call<Refusal>('GET', '/api/notifications?status=lost');
    expect(status.status).toBe(400);
    expect(status.body.issues.map((i) => i.field)).toEqual(['status']);
    // An empty value is no value, and a number is read as one.
    expect((await srv.api.call('GET', '/api/audit?limit=&before=')).status).toBe(200);
    expect((await srv.api.get<{ users: unknown[] }>(`/api/users?locationId=${hqId}&limit=1`)).users).toHaveLength(1);
  });

  it('refuses a body against its schema with the same shape as the services', async () => {
    const e911 = await srv.api.call<Refusal>('POST', '/api/account/e911', { enabled: 'yes' });
    expect(e911.status).toBe(400);
    expect(e911.body).toEqual({
      error: 'invalid',
      message: 'invalid input: enabled must be true or false',
      issues: [{ field: 'enabled', reason: 'must be true or false' }],
    });
    const stray = await srv.api.call<Refusal>('PATCH', `/api/users/${userId}`, { nickname: 'A' });
    expect(stray.status).toBe(400);
    expect(stray.body.error).toBe('invalid');
    expect(stray.body.issues).toHaveLength(1);
    expect(stray.body.issues[0]!.reason).toMatch(/nickname/);
    const test = await srv.api.call<Refusal>('POST', '/api/account/notifications/test', { channel: 'fax' });
    expect(test.status).toBe(400);
    expect(test.body.issues.map((i) => i.field)).toEqual(['channel']);
  });

  it('answers a login without a token string 400, not as a failed login', async () => {
    const anon = apiClient(srv.app.httpUrl, null);
    const r = await anon.call<Refusal>('POST', '/api/session', { token: 42 });
    expect(r.status).toBe(400);
    expect(r.body.issues.map((i) => i.field)).toEqual(['token']);
  });

  it('a PATCH changes only the fields it names (no schema defaults fill in the others)', async () => {
    const u = await srv.api.patch<{ locationId: number | null; language: string; emails: string[]; displayName: string }>(
      `/api/users/${userId}`,
      { displayName: 'Ana Diaz Ruiz' },
    );
    expect(u).toMatchObject({ displayName: 'Ana Diaz Ruiz', locationId: hqId, language: 'fr-CA', emails: ['ana@example.com'] });
    const before = await srv.api.get<{ address: Record<string, unknown>; adminEmails: string[] }>(`/api/locations/${hqId}`);
    const loc = await srv.api.patch<{ address: Record<string, unknown>; adminEmails: string[]; name: string }>(`/api/locations/${hqId}`, {
      name: 'Headquarters',
      address: { plus4: '1234' },
    });
    expect(loc.name).toBe('Headquarters');
    expect(loc.address).toEqual({ ...before.address, plus4: '1234' });
    expect(loc.adminEmails).toEqual(before.adminEmails);
  });

  it('the location check answers a refused location as its result, not as an error', async () => {
    const r = await srv.api.call<{ ok: boolean; issues: { field: string }[] }>('POST', '/api/locations/validate', {
      ...HQ,
      timeZone: 'Mars/Base',
    });
    expect(r.status).toBe(200);
    expect(r.body.ok).toBe(false);
    expect(r.body.issues.map((i) => i.field)).toEqual(['timeZone']);
  });
});
