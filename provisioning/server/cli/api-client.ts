// The admin API client: `e911-server <resource> <verb>` as one HTTP request (and, with --wait, a job followed).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Flags, UsageError, need, readJson } from './common.js';

interface HttpCall {
  method: string;
  path: string;
  body?: unknown;
  csv?: Buffer;
  /** Print the body as text, not JSON. */
  raw?: boolean;
}

function ids(list: string): number[] {
  return list.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${s} is not a user id`);
    return n;
  });
}

function onOff(v: string | boolean | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'on' || v === 'true') return true;
  if (v === 'off' || v === 'false') return false;
  throw new UsageError('use on or off');
}

function query(params: Record<string, string | boolean | undefined>): string {
  const q = Object.entries(params).filter((e): e is [string, string] => typeof e[1] === 'string');
  return q.length ? `?${new URLSearchParams(q).toString()}` : '';
}

function route(verb: string, sub: string | undefined, arg: string | undefined, f: Flags): HttpCall {
  const id = () => encodeURIComponent(need(arg, 'an ID'));
  switch (`${verb} ${sub ?? ''}`.trim()) {
    case 'account':
    case 'account show':
      return { method: 'GET', path: '/api/account' };
    case 'account set':
      return {
        method: 'PATCH',
        path: '/api/account',
        body: {
          name: f.name,
          contactEmail: f['contact-email'],
          recommendations: onOff(f.recommendations),
          notificationPolicy: f.policy,
          locationPolicy: f['location-policy'],
          elinCallback: onOff(f['elin-callback']),
        },
      };
    case 'e911 enable':
    case 'e911 disable':
      return { method: 'POST', path: '/api/account/e911', body: { enabled: sub === 'enable' } };
    case 'notifications':
    case 'notifications show':
      return { method: 'GET', path: '/api/account/notifications' };
    case 'notifications set':
      return { method: 'PUT', path: '/api/account/notifications', body: readJson(f.file) };
    case 'notifications test':
      return { method: 'POST', path: '/api/account/notifications/test', body: { channel: need(f.channel, '--channel'), to: f.to } };
    case 'locations':
    case 'locations list':
      return { method: 'GET', path: '/api/locations' };
    case 'locations show':
      return { method: 'GET', path: `/api/locations/${id()}` };
    case 'locations create':
      return { method: 'POST', path: '/api/locations', body: readJson(f.file) };
    case 'locations update':
      return { method: 'PATCH', path: `/api/locations/${id()}`, body: readJson(f.file) };
    case 'locations delete':
      return { method: 'DELETE', path: `/api/locations/${id()}` };
    case 'locations validate':
      return { method: 'POST', path: '/api/locations/validate', body: readJson(f.file) };
    case 'users':
    case 'users list':
      return { method: 'GET', path: `/api/users${query({ locationId: f.location, limit: f.limit })}` };
    case 'users show':
      return { method: 'GET', path: `/api/users/${id()}` };
    case 'users create':
      return { method: 'POST', path: '/api/users', body: readJson(f.file) };
    case 'users update':
      return { method: 'PATCH', path: `/api/users/${id()}`, body: readJson(f.file) };
    case 'users delete':
      return { method: 'DELETE', path: `/api/users/${id()}` };
    case 'phones':
    case 'phones list':
      return { method: 'GET', path: `/api/phones${f['not-acknowledged'] ? '?notice=unacknowledged' : ''}` };
    case 'phones show':
      return { method: 'GET', path: `/api/phones/${id()}` };
    case 'phones credentials':
      return { method: 'POST', path: `/api/phones/${id()}/credentials` };
    case 'phones push':
      return { method: 'POST', path: `/api/phones/${id()}/push` };
    case 'phones delete':
      return { method: 'DELETE', path: `/api/phones/${id()}` };
    case 'bulk-emails': {
      const target = f.all
        ? { all: true }
        : f.location
          ? { locationId: Number(f.location) }
          : f.users
            ? { userIds: ids(f.users as string) }
            : null;
      if (!target) throw new UsageError('say whom: --all, --location ID or --users 1,2,3');
      const emails =
        typeof f.emails === 'string'
          ? f.emails
              .split(',')
              .map((e) => e.trim())
              .filter(Boolean)
          : [];
      return { method: 'POST', path: '/api/bulk/emails', body: { emails, target } };
    }
    case 'accounts':
    case 'accounts list':
      return { method: 'GET', path: '/api/accounts' };
    case 'accounts create':
      return { method: 'POST', path: '/api/accounts', body: { id: need(arg, 'an account ID'), name: f.name ?? '' } };
    case 'accounts token':
      return { method: 'POST', path: `/api/accounts/${id()}/tokens`, body: { name: need(f.name as string | undefined, '--name NAME') } };
    case 'jobs':
    case 'jobs list':
      return { method: 'GET', path: '/api/jobs' };
    case 'jobs show':
      return { method: 'GET', path: `/api/jobs/${id()}` };
    case 'csv export':
      return { method: 'GET', path: '/api/csv/users', raw: true };
    case 'csv validate':
      return { method: 'POST', path: '/api/csv/users/validate', csv: readFileSync(need(arg, 'the CSV FILE')) };
    case 'csv apply':
      return {
        method: 'POST',
        path: `/api/csv/uploads/${id()}/apply`,
        body: { mode: f['all-or-nothing'] ? 'all-or-nothing' : 'valid-rows' },
      };
    case 'events':
      return { method: 'GET', path: `/api/events${query({ type: f.type, deviceId: f.device, limit: f.limit })}` };
    case 'event':
      return { method: 'GET', path: `/api/events/${encodeURIComponent(need(sub, 'an event ID'))}` };
    case 'audit':
      return { method: 'GET', path: `/api/audit${query({ entity: f.entity, entityId: f['entity-id'], limit: f.limit })}` };
    case 'openapi':
      return { method: 'GET', path: '/api/openapi.json' };
    default:
      throw new UsageError(`unknown command: ${[verb, sub].filter(Boolean).join(' ')} (see e911-server help)`);
  }
}

export async function apiCommand(
  verb: string,
  sub: string | undefined,
  arg: string | undefined,
  f: Flags,
  dataDir: string,
  env: NodeJS.ProcessEnv,
  out: (s: string) => void,
): Promise<number> {
  const call = route(verb, sub, arg, f);
  const urlFile = path.join(dataDir, 'api-url');
  const base = (
    (f.url as string | undefined) ??
    env.E911_SERVER_URL ??
    (existsSync(urlFile) ? readFileSync(urlFile, 'utf8').trim() : 'http://127.0.0.1:8080')
  ).replace(/\/$/, '');
  const tokenFile = path.join(dataDir, 'admin-token');
  const token =
    (f.token as string | undefined) ??
    env.E911_SERVER_TOKEN ??
    (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined);
  // The OpenAPI document is public (PUBLIC_ROUTE): printing it needs no token.
  if (!token && verb !== 'openapi')
    throw new UsageError(`no API token: pass --token, set E911_SERVER_TOKEN, or run where ${tokenFile} is readable`);
  const request = async (method: string, p: string, body?: unknown, csv?: Buffer) => {
    const res = await fetch(`${base}${p}`, {
      signal: AbortSignal.timeout(60_000),
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(csv ? { 'content-type': 'text/csv' } : body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(csv ? { body: csv } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    }).catch((err: Error & { cause?: { code?: string } }) => {
      throw new Error(`cannot reach the server at ${base}: ${err.cause?.code ?? err.message} (is it running? --url sets where)`);
    });
    const text = await res.text();
    return {
      status: res.status,
      text,
      json: (() => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          return undefined;
        }
      })(),
    };
  };
  let res = await request(call.method, call.path, call.body, call.csv);
  // --wait: follow a job until it finishes.
  const job = res.json as { id?: number; status?: string; kind?: string } | undefined;
  if (f.wait && res.status < 300 && job?.id !== undefined && job.kind !== undefined) {
    while (job && res.status < 300 && !['done', 'failed'].includes((res.json as { status: string }).status)) {
      await new Promise((r) => setTimeout(r, 200));
      res = await request('GET', `/api/jobs/${job.id}`);
    }
  }
  if (call.raw && res.status < 300) {
    if (f.out) writeFileSync(f.out as string, res.text);
    else out(res.text);
  } else if (res.status !== 204) out(`${res.json !== undefined ? JSON.stringify(res.json, null, 2) : res.text}\n`);
  if (res.status >= 400) return res.status === 401 ? 3 : res.status === 404 ? 4 : 1;
  return (res.json as { status?: string } | undefined)?.status === 'failed' ? 1 : 0;
}
