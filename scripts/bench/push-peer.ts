// The emergency benchmark's provisioning server and keypad, outside the agent's
// process: on the parent's word it publishes a (2 MiB) locations push to the
// broker, then after delayMs dials 911 on the agent's control socket, stamping
// the moment the request is written (process.hrtime.bigint(), CLOCK_MONOTONIC,
// the wire's clock). A digit typed in the agent's own process could not be
// stamped while the agent is busy: it would wait unseen. Run by emergency.bench.ts (fork).
import net from 'node:net';
import mqtt from 'mqtt';
import { privateKeyFromText, signDocument, type KeyPairText } from '../../provisioning/protocol/signing.js';
import { bigLocations } from '../../test/helpers/locations.js';

const [brokerUrl, topic, socketPath, deviceId] = process.argv.slice(2) as [string, string, string, string];
const client = await mqtt.connectAsync(brokerUrl, { protocolVersion: 5 });
const payloads = new Map<number, Buffer>();

type Msg =
  | { kind: 'prepare'; versions: number[]; keys: KeyPairText }
  | { kind: 'go'; version: number | null; delayMs: number }
  | { kind: 'quit' };

function dial(): Promise<{ at: string; ok: boolean; reply: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let at = 0n;
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      at = process.hrtime.bigint();
      sock.write(`${JSON.stringify({ cmd: 'dial', args: { digits: '911' } })}\n`);
    });
    sock.on('data', (d: string) => {
      buf += d;
      if (!buf.includes('\n')) return;
      sock.end();
      const reply = buf.slice(0, buf.indexOf('\n'));
      resolve({ at: at.toString(), ok: (JSON.parse(reply) as { ok: boolean }).ok, reply: reply.slice(0, 300) });
    });
    sock.on('error', reject);
  });
}

process.on('message', (m: Msg) => {
  if (m.kind === 'prepare') {
    // Signed here, not in the agent's process: a 2 MiB document takes a few hundred ms to sign.
    const key = privateKeyFromText(m.keys);
    let bytes = 0;
    for (const v of m.versions) {
      const p = Buffer.from(bigLocations(v, (d) => signDocument(d, key), deviceId).payload);
      bytes = p.length;
      payloads.set(v, p);
    }
    process.send!({ kind: 'prepared', bytes });
  } else if (m.kind === 'go') {
    if (m.version !== null) client.publish(topic, payloads.get(m.version)!, { qos: 1, retain: true });
    setTimeout(() => {
      dial().then(
        (r) => process.send!({ kind: 'dialed', ...r }),
        (err: Error) => process.send!({ kind: 'dialed', at: '0', ok: false, reply: err.message }),
      );
    }, m.delayMs);
  } else {
    void client.endAsync().then(() => process.exit(0));
  }
});
process.send!({ kind: 'ready' });
