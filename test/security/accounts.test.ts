// Customer accounts on one server: an admin of one account calls every route of the admin
// API, from the router's own table, aimed at another account's data (its ids in the path,
// its ids in bodies and queries). Each answers 403 or 404, or acts on the caller's own
// account only; nothing it answers names the other account's data, and that account's
// records (settings, locations, users, phones, events, deliveries, audit, jobs) are the
// same afterwards. A route added without an entry in ROUTES fails the test. On both stores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverStores } from '../helpers/server-stores.js';
import { requires } from '../helpers/require.js';
import { apiClient, HQ, startTestServer, type Api, type TestServer } from '../helpers/server-app.js';

/** What the other account's admin is expected to get from a route. */
type Expect =
  /** Refused: the path names another account's record (404), or the route is the provider's (403). */
  | 'refused'
  /** Answers for the caller's own account: 2xx with none of the other account's data, or a 4xx refusal. */
  | 'own';

interface Case {
  expect: Expect;
  /** The request body, built from the other account's ids: what a cross-account attempt would send. */
  body?: (a: AccountA) => unknown;
  /** The query string (the other account's ids). */
  query?: (a: AccountA) => string;
  /** Answers allowed besides 403/404 for 'refused', and why. */
  alsoAllowed?: { status: number; why: string };
}

interface AccountA {
  locationId: number;
  userId: number;
  deviceId: string;
  eventId: string;
  jobId: number;
  uploadId: string;
}

const EMAILS = ['attacker@example.net'];

/** Every route but the public ones (routes.test.ts) and HEAD (fastify's copy of GET). */
const ROUTES: Record<string, Case> = {
  'GET /api/account': { expect: 'own' },
  'PATCH /api/account': { expect: 'own', body: () => ({ name: 'Globex changed' }) },
  'POST /api/account/e911': { expect: 'own', body: () => ({ enabled: false }) },
  'GET /api/account/notifications': { expect: 'own' },
  'PUT /api/account/notifications': { expect: 'own', body: () => ({ webhook: null }) },
  'POST /api/account/notifications/test': { expect: 'own', body: () => ({ channel: 'webhook' }) },
  'GET /api/locations': { expect: 'own' },
  'POST /api/locations': { expect: 'own', body: () => ({ ...HQ, code: 'GLOBEX-1' }) },
  'POST /api/locations/validate': { expect: 'own', body: () => ({ ...HQ, code: 'GLOBEX-2' }) },
  'GET /api/locations/:id': { expect: 'refused' },
  'PATCH /api/locations/:id': { expect: 'refused', body: () => ({ name: 'taken over' }) },
  'DELETE /api/locations/:id': { expect: 'refused' },
  'GET /api/users': { expect: 'own', query: (a) => `?locationId=${a.locationId}` },
  'POST /api/users': {
    expect: 'own',
    // Another account's location and phone: refused, never assigned.
    body: (a) => ({
      username: 'globex-mallory',
      displayName: 'Mallory',
      locationId: a.locationId,
      callback: '+14085550111',
      deviceIds: [a.deviceId],
      emails: EMAILS,
    }),
  },
  'GET /api/users/:id': { expect: 'refused' },
  'PATCH /api/users/:id': { expect: 'refused', body: () => ({ emails: EMAILS }) },
  'DELETE /api/users/:id': { expect: 'refused' },
  'GET /api/phones': { expect: 'own' },
  'GET /api/phones/:deviceId': { expect: 'refused' },
  'POST /api/phones/:deviceId/credentials': {
    expect: 'refused',
    // Device ids are unique across accounts (docs/server.md): another account's is named taken, never re-keyed.
    alsoAllowed: { status: 409, why: 'the device id is registered to another account' },
  },
  'POST /api/phones/:deviceId/push': { expect: 'refused' },
  'DELETE /api/phones/:deviceId': { expect: 'refused' },
  'POST /api/bulk/emails': { expect: 'own', body: (a) => ({ emails: EMAILS, target: { userIds: [a.userId] } }) },
  'GET /api/jobs': { expect: 'own' },
  'GET /api/jobs/:id': { expect: 'refused' },
  'GET /api/csv/users': { expect: 'own' },
  'POST /api/csv/users/validate': { expect: 'own', body: (a) => csvOf(a.userId, 'attacker@example.net') },
  'POST /api/csv/uploads/:id/apply': { expect: 'refused', body: () => ({}) },
  'GET /api/events': { expect: 'own', query: (a) => `?deviceId=${a.deviceId}` },
  'GET /api/events/:id': { expect: 'refused' },
  'GET /api/notifications': { expect: 'own', query: (a) => `?eventId=${a.eventId}` },
  'GET /api/audit': { expect: 'own', query: (a) => `?entity=location&entityId=${a.locationId}` },
  'GET /api/broker/mosquitto': { expect: 'refused' },
  'GET /api/stream': { expect: 'own' }, // tested on its own below: it never ends
  'GET /api/accounts': { expect: 'refused' },
  'POST /api/accounts': { expect: 'refused', body: () => ({ id: 'initech', name: 'Initech' }) },
  'POST /api/accounts/:id/tokens': { expect: 'refused', body: () => ({ name: 'stolen' }) },
  'PUT /api/session/account': { expect: 'refused', body: () => ({ id: 'acme' }) },
};

/** An upload that gives one user one email: the download's columns. */
function csvOf(userId: number, email: string): string {
  const emails = Array.from({ length: 10 }, (_, i) => `Email${i + 1}`);
  return `UserId,Username,DisplayName,Extension,LocationCode,LocationName,${emails.join(',')}\n${userId},,,,,,${email}${','.repeat(9)}\n`;
}

/** The path with the other account's ids in it. */
function target(url: string, a: AccountA): string {
  const id = url.startsWith('/api/locations')
    ? a.locationId
    : url.startsWith('/api/users')
      ? a.userId
      : url.startsWith('/api/jobs')
        ? a.jobId
        : url.startsWith('/api/events')
          ? a.eventId
          : url.startsWith('/api/csv/uploads')
            ? a.uploadId
            : url.startsWith('/api/accounts')
              ? 'acme'
              : '';
  return url.replace(':deviceId', a.deviceId).replace(':id', String(id));
}

/** Everything account A's admin can read of A, as A sees it. */
async function snapshot(api: Api): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const url of [
    '/api/account',
    '/api/account/notifications',
    '/api/locations',
    '/api/users',
    '/api/phones',
    '/api/events',
    '/api/notifications',
    '/api/audit',
    '/api/jobs',
    '/api/csv/users',
  ])
    out[url] = (await api.call('GET', url)).body;
  // Deliveries keep retrying on their own (nothing listens): which there are is what must not change.
  out['/api/notifications'] = (out['/api/notifications'] as { id: number; eventId: string; channel: string; recipient: string }[]).map(
    (n) => ({ id: n.id, eventId: n.eventId, channel: n.channel, recipient: n.recipient }),
  );
  return out;
}

describe.each(serverStores())('customer accounts on $name: no route reaches another account', (backend) => {
  const gate = backend.name === 'postgres' ? requires('the server on PostgreSQL', ['postgres']) : { skip: false };
  describe.skipIf(gate.skip)('', () => {
    let srv: TestServer;
    let acme: Api;
    let globex: Api;
    let a: AccountA;

    beforeAll(async () => {
      await backend.setup();
      srv = await startTestServer({ store: (await backend.store()).setting });
      // The provider (srv.token, the default account's) creates both accounts and their first tokens.
      for (const [id, name] of [
        ['acme', 'Acme Corp'],
        ['globex', 'Globex'],
      ] as const)
        expect((await srv.api.call('POST', '/api/accounts', { id, name })).status).toBe(201);
      const mint = async (id: string) => (await srv.api.post<{ token: string }>(`/api/accounts/${id}/tokens`, { name: 'admin' })).token;
      acme = apiClient(srv.app.httpUrl, await mint('acme'));
      globex = apiClient(srv.app.httpUrl, await mint('globex'));

      // Account A (acme): a location, a user with a phone and credentials, a 911 event and its deliveries, a job, an upload.
      await acme.put('/api/account/notifications', { webhook: { url: 'http://127.0.0.1:9/hook' } });
      const locationId = (await acme.post<{ id: number }>('/api/locations', { ...HQ, code: 'ACME-HQ' })).id;
      const userId = (
        await acme.post<{ id: number }>('/api/users', {
          username: 'acme-alice',
          displayName: 'Alice Acme',
          locationId,
          callback: '+14085550100',
          deviceIds: ['acme-phone-1'],
          emails: ['alice@acme.example'],
        })
      ).id;
      await acme.post('/api/phones/acme-phone-1/credentials');
      await srv.app.intake.handleEvent({
        v: 1,
        id: 'acme-event-1',
        type: 'emergency-call',
        deviceId: 'acme-phone-1',
        ts: new Date().toISOString(),
        data: { numberDialed: '911', callback: '+14085550100', displayName: 'Alice Acme' },
      } as Parameters<TestServer['app']['intake']['handleEvent']>[0]);
      const jobId = (await acme.post<{ id: number }>('/api/bulk/emails', { emails: ['ops@acme.example'], target: { userIds: [userId] } }))
        .id;
      const upload = await acme.call<{ uploadId: string }>('POST', '/api/csv/users/validate', csvOf(userId, 'new@acme.example'));
      expect(upload.status).toBe(200);
      a = { locationId, userId, deviceId: 'acme-phone-1', eventId: 'acme-event-1', jobId, uploadId: upload.body.uploadId };
      // Settled: the job done, the event's deliveries tried, before the "before" picture.
      const deadline = Date.now() + 20_000;
      while ((await acme.get<{ status: string }>(`/api/jobs/${jobId}`)).status !== 'done' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      await srv.app.pusher.idle();
    }, 60_000);
    afterAll(async () => {
      await srv?.stop();
      await backend.teardown();
    });

    it('every route of the router is covered here', () => {
      const routes = [
        ...new Set(
          srv.app
            .routes()
            .filter((r) => !r.public && r.method !== 'HEAD')
            .map((r) => `${r.method} ${r.url}`),
        ),
      ];
      expect(routes.filter((r) => !(r in ROUTES))).toEqual([]);
      expect(Object.keys(ROUTES).filter((r) => !routes.includes(r))).toEqual([]);
    });

    it("another account's admin is refused or answered from its own account, and changes nothing of the other", async () => {
      const before = await snapshot(acme);
      const markers = ['ACME-HQ', 'acme-alice', 'acme-phone-1', 'acme-event-1', 'Acme Corp', 'alice@acme.example', 'ops@acme.example'];
      const failures: string[] = [];
      for (const [route, c] of Object.entries(ROUTES)) {
        if (route === 'GET /api/stream') continue;
        const [method, url] = route.split(' ') as [string, string];
        const body = c.body?.(a);
        const res = await globex.call(method, `${target(url, a)}${c.query?.(a) ?? ''}`, body);
        const refusedOk = res.status === 403 || res.status === 404 || res.status === c.alsoAllowed?.status;
        if (c.expect === 'refused' && !refusedOk) failures.push(`${route}: ${res.status} ${res.text.slice(0, 200)}`);
        if (c.expect === 'own' && res.status >= 500) failures.push(`${route}: ${res.status} ${res.text.slice(0, 200)}`);
        // An answer with data names none of the other account's (a refusal may echo the id it was given).
        if (res.status < 300) for (const m of markers) if (res.text.includes(m)) failures.push(`${route}: answer shows ${m}`);
      }
      expect(failures).toEqual([]);
      // Whatever globex's jobs and pushes do, they are done before the "after" picture.
      await new Promise((r) => setTimeout(r, 300));
      await srv.app.pusher.idle();
      expect(await snapshot(acme)).toEqual(before);
    });

    it('the event stream shows an account its own happenings only', async () => {
      const listen = async (token: string) => {
        const ctl = new AbortController();
        const res = await fetch(`${srv.app.httpUrl}/api/stream`, { headers: { authorization: `Bearer ${token}` }, signal: ctl.signal });
        const reader = res.body!.getReader();
        let text = '';
        const pump = (async () => {
          try {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) return;
              text += new TextDecoder().decode(value);
            }
          } catch {
            /* aborted */
          }
        })();
        return {
          text: () => text,
          close: async () => {
            ctl.abort();
            await pump;
          },
        };
      };
      // A token of each account for its stream (the API client keeps its own to itself).
      const acmeToken = await srv.api.post<{ token: string }>('/api/accounts/acme/tokens', { name: 'stream' });
      const globexToken = await srv.api.post<{ token: string }>('/api/accounts/globex/tokens', { name: 'stream' });
      const sa = await listen(acmeToken.token);
      const sg = await listen(globexToken.token);
      await acme.patch(`/api/locations/${a.locationId}`, { name: 'Acme HQ renamed' });
      const deadline = Date.now() + 5_000;
      while (!sa.text().includes('"entity":"location"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(sa.text()).toContain('"entity":"location"');
      await new Promise((r) => setTimeout(r, 200));
      expect(sg.text()).not.toContain('"entity":"location"');
      await sa.close();
      await sg.close();
    });

    it("a provider's portal session shows the account it picks; an account's admin and a Bearer token cannot pick", async () => {
      const base = srv.app.httpUrl;
      const login = async (token: string) => {
        const res = await fetch(`${base}/api/session`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token }),
        });
        expect(res.status).toBe(200);
        return res.headers.get('set-cookie')!.split(';')[0]!;
      };
      const session = (cookie: string) => async (method: string, url: string, body?: unknown) => {
        const res = await fetch(`${base}${url}`, {
          method,
          headers: { cookie, origin: base, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: res.status, text: await res.text() };
      };
      const accountOf = async (as: ReturnType<typeof session>) => (JSON.parse((await as('GET', '/api/account')).text) as { id: string }).id;
      const provider = session(await login(srv.token));
      const sameTokenElsewhere = session(await login(srv.token));
      expect(await accountOf(provider)).toBe('default');

      const picked = await provider('PUT', '/api/session/account', { id: 'acme' });
      expect(picked.status, picked.text).toBe(200);
      expect(JSON.parse(picked.text)).toMatchObject({ id: 'acme', name: 'Acme Corp' });
      expect(await accountOf(provider)).toBe('acme');
      expect((await provider('GET', '/api/locations')).text).toContain('ACME-HQ');
      // Per session: the token's other session still shows its own account.
      expect(await accountOf(sameTokenElsewhere)).toBe('default');
      expect((await sameTokenElsewhere('GET', '/api/locations')).text).not.toContain('ACME-HQ');
      // The account's admins can see that the provider looked in.
      expect(JSON.stringify(await acme.get('/api/audit'))).toContain('session.show-account');
      expect((await provider('PUT', '/api/session/account', { id: 'initech' })).status).toBe(404);
      expect((await provider('PUT', '/api/session/account', { id: 'Not An Id' })).status).toBe(400);
      expect((await provider('PUT', '/api/session/account', { id: 'default' })).status).toBe(200);
      expect(await accountOf(provider)).toBe('default');

      // An account's admin may not pick (403) and stays in its own account, even with the
      // session's row naming another account behind the API's back.
      const acmeToken = (await srv.api.post<{ token: string }>('/api/accounts/acme/tokens', { name: 'portal' })).token;
      const acmeCookie = await login(acmeToken);
      const acmeSession = session(acmeCookie);
      expect((await acmeSession('PUT', '/api/session/account', { id: 'globex' })).status).toBe(403);
      expect(await srv.app.repo.showAccount(acmeCookie.split('=')[1]!, 'globex')).toBe(true);
      expect(await accountOf(acmeSession)).toBe('acme');
      expect((await acmeSession('GET', '/api/locations')).text).toContain('ACME-HQ');
      // A Bearer token has no session to change: 400, and its account is its own.
      expect((await srv.api.call('PUT', '/api/session/account', { id: 'acme' })).status).toBe(400);
    });

    it('two accounts may use the same location code and user name; one account may not twice', async () => {
      const mk = (api: Api) => api.call('POST', '/api/locations', { ...HQ, code: 'SHARED' });
      expect((await mk(acme)).status).toBe(201);
      expect((await mk(globex)).status).toBe(201);
      expect((await mk(globex)).status).toBe(409);
      const user = (api: Api) =>
        api.call('POST', '/api/users', { username: 'jsmith', displayName: 'J Smith', callback: '+14085550133', locationId: null });
      expect((await user(acme)).status).toBe(201);
      expect((await user(globex)).status).toBe(201);
      expect((await user(acme)).status).toBe(409);
    });

    it("a phone's events touch its own account only: another account's location or event id changes nothing", async () => {
      // A globex phone, with a user who may pick locations.
      await globex.patch('/api/account', { recommendations: true });
      const gLoc = (await globex.post<{ id: number }>('/api/locations', { ...HQ, code: 'GLOBEX-HQ' })).id;
      await globex.post('/api/users', {
        username: 'globex-bob',
        displayName: 'Bob Globex',
        locationId: gLoc,
        callback: '+14085550122',
        deviceIds: ['globex-phone-1'],
        emails: ['bob@globex.example'],
      });
      const before = await snapshot(acme);
      const send = (id: string, type: string, data: unknown) =>
        srv.app.intake.handleEvent({
          v: 1,
          id,
          type,
          deviceId: 'globex-phone-1',
          ts: new Date().toISOString(),
          data,
        } as Parameters<TestServer['app']['intake']['handleEvent']>[0]);
      // Picking acme's location: refused (not found in its own account), the user stays where they are.
      expect(await send('globex-pick-1', 'location-selected', { locationId: String(a.locationId) })).toBe(true);
      const bob = (await globex.get<{ users: { username: string; locationId: number }[] }>('/api/users')).users.find(
        (u) => u.username === 'globex-bob',
      )!;
      expect(bob.locationId).toBe(gLoc);
      // Reusing acme's event id: not stored again, acme's event untouched.
      expect(await send('acme-event-1', 'emergency-call', { numberDialed: '911' })).toBe(false);
      // A report in the name of acme's phone from globex's account context never happens: reports are by the phone's own id.
      await srv.app.intake.flush();
      expect(await snapshot(acme)).toEqual(before);
      expect((await globex.get<unknown[]>('/api/events')).map((e) => (e as { id: string }).id)).toEqual(['globex-pick-1']);
    });
  });
});
