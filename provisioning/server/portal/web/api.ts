// The admin API from the browser: same origin, the session cookie carries the
// token. Every failure becomes an ApiError with the server's own reasons.
export interface FieldIssue {
  field: string;
  reason: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: FieldIssue[] = [],
    readonly missing: string[] = [],
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type Unauthorized = () => void;

export class Api {
  constructor(private readonly onUnauthorized: Unauthorized) {}

  async call<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        credentials: 'same-origin',
        headers: body === undefined ? {} : { 'content-type': contentType },
        ...(body === undefined ? {} : { body: contentType === 'application/json' ? JSON.stringify(body) : (body as BodyInit) }),
      });
    } catch (err) {
      throw new ApiError(0, 'network', `the server did not answer (${(err as Error).message})`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (a CSV download): the text itself.
    }
    if (res.ok) return parsed as T;
    const e = (parsed ?? {}) as { error?: string; message?: string; issues?: FieldIssue[]; missing?: string[] };
    if (res.status === 401 && path !== '/api/session') this.onUnauthorized();
    throw new ApiError(res.status, e.error ?? 'http', e.message ?? `${res.status} ${res.statusText}`, e.issues ?? [], e.missing ?? []);
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }
  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.call<T>('POST', path, body);
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('PATCH', path, body);
  }
  put<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('PUT', path, body);
  }
  delete(path: string): Promise<void> {
    return this.call<void>('DELETE', path);
  }
}

/** Issues keyed by field path ("address.postalCode"), for showing each beside its input. */
export function issuesByField(issues: FieldIssue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of issues) out[i.field] = out[i.field] ? `${out[i.field]}; ${i.reason}` : i.reason;
  return out;
}
