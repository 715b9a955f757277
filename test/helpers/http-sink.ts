// A real HTTP server (node:http) on a free loopback port that records every
// request: an SMS provider or a webhook receiver for tests. It can be told to
// fail with a status for a while.
import http from 'node:http';
import { freePort } from './ports.js';

export interface SunkRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: unknown;
}

export interface HttpSink {
  url: string;
  port: number;
  requests: SunkRequest[];
  /** Answer with this status (and record nothing) until set back to null. */
  failWith: number | null;
  /** Answer recorded requests this way instead of 200 (a redirect, an error with a body), until set back to null. */
  answer: { status: number; headers?: Record<string, string>; body?: string } | null;
  close(): Promise<void>;
}

export async function startHttpSink(): Promise<HttpSink> {
  const port = await freePort();
  const sink: HttpSink = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: [],
    failWith: null,
    answer: null,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (sink.failWith !== null) {
        res.writeHead(sink.failWith).end('failing on purpose');
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown = null;
      try {
        json = JSON.parse(body);
      } catch {
        json = null;
      }
      sink.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json });
      if (sink.answer) {
        res.writeHead(sink.answer.status, sink.answer.headers ?? {}).end(sink.answer.body ?? '');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: `msg-${sink.requests.length}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return sink;
}
