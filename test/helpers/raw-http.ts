// One HTTP/1.1 request written byte for byte, so a test can send request targets that
// fetch() would normalise away (absolute-form, dot segments, percent-escapes, double slashes).
import net from 'node:net';

export interface RawAnswer {
  status: number;
  head: string;
  body: string;
}

export function rawRequest(
  port: number,
  requestLine: string,
  headers: Record<string, string> = {},
  body = '',
  timeoutMs = 5000,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      const end = data.indexOf('\r\n\r\n');
      const head = end >= 0 ? data.slice(0, end) : data;
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (m) resolve({ status: Number(m[1]), head, body: end >= 0 ? data.slice(end + 4) : '' });
      else reject(err ?? new Error(`no HTTP answer to ${requestLine}: ${JSON.stringify(data.slice(0, 200))}`));
    };
    // An event stream never ends: its status line and headers are all a test needs.
    const timer = setTimeout(() => done(), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      data += chunk;
      if (/^HTTP\/1\.[01] (\d{3})/.test(data) && /text\/event-stream/i.test(data) && data.includes('\r\n\r\n')) done();
    });
    sock.on('end', () => done());
    sock.on('error', (e) => done(e));
    const lines = [requestLine, 'Host: 127.0.0.1', 'Connection: close'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    sock.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}
