// One worker process of the scale benchmark: a slice of the simulated phones (sim-phone.ts),
// forked by scale.bench.ts and driven over the IPC channel. It tells the parent when its
// phones are connected and each time all of them have applied a new address version.
import { publicKeyFromText } from '../../provisioning/protocol/signing.js';
import { SimPhone, windowed } from './sim-phone.js';
import { phoneId, phonePassword, sourceAddress } from './scale-plan.js';

export interface WorkerConnect {
  type: 'connect';
  port: number;
  protocolVersion: 4 | 5;
  from: number;
  to: number;
  seed: string;
  publicKey: string;
  perAddress: number;
  verifyEvery: number;
  window: number;
}
export type ToWorker = WorkerConnect | { type: 'close' };
export type FromWorker =
  | { type: 'connected'; phones: number; ms: number }
  | { type: 'applied'; version: number }
  | { type: 'error'; message: string }
  | { type: 'closed' };

const send = (m: FromWorker) => process.send!(m);
let phones: SimPhone[] = [];

async function connect(c: WorkerConnect): Promise<void> {
  const key = publicKeyFromText(c.publicKey);
  const count = new Map<number, number>();
  const n = c.to - c.from;
  phones = [];
  for (let i = c.from; i < c.to; i++) {
    const id = phoneId(i);
    phones.push(
      new SimPhone(
        id,
        phonePassword(c.seed, id),
        key,
        (_p, version) => {
          const k = (count.get(version) ?? 0) + 1;
          count.set(version, k);
          if (k === n) send({ type: 'applied', version });
        },
        () => {},
        i % c.verifyEvery === 0,
      ),
    );
  }
  const t0 = performance.now();
  const at = new Map(phones.map((p, j) => [p, sourceAddress(c.from + j, c.perAddress)]));
  await windowed(phones, c.window, (p) => p.connect({ port: c.port, protocolVersion: c.protocolVersion, localAddress: at.get(p)! }));
  send({ type: 'connected', phones: n, ms: performance.now() - t0 });
}

process.on('message', (m: ToWorker) => {
  if (m.type === 'connect') connect(m).catch((err: Error) => send({ type: 'error', message: `${err.name}: ${err.message}` }));
  else if (m.type === 'close') {
    for (const p of phones) p.close();
    send({ type: 'closed' });
    process.disconnect();
  }
});
process.on('uncaughtException', (err) => {
  send({ type: 'error', message: `${err.name}: ${err.message}` });
  process.exit(1);
});
// The parent gone (killed, crashed): nothing to simulate for.
process.on('disconnect', () => process.exit(0));
