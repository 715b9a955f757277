// One worker process of the scale benchmark: a slice of the simulated phones (sim-phone.ts),
// forked by scale.bench.ts and driven over the IPC channel. It tells the parent when its
// phones are connected and each time all of them have applied a new address version.
import { publicKeyFromText } from '../../provisioning/protocol/signing.js';
import { SimPhone, connectRetrying, windowed } from './sim-phone.js';
import { phoneId, phonePassword, sourceAddress } from './scale-plan.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WorkerConnect {
  type: 'connect';
  /** The broker's MQTT ports: phone i goes to ports[i % ports.length] (a cluster's nodes). */
  ports: number[];
  protocolVersion: 4 | 5;
  subscribeQos: 0 | 1;
  publishQos: 0 | 1;
  retain: boolean;
  from: number;
  to: number;
  seed: string;
  publicKey: string;
  perAddress: number;
  verifyEvery: number;
  window: number;
}
export type ToWorker = WorkerConnect | { type: 'mark'; round: number } | { type: 'stragglers' } | { type: 'close' };
/** The phones that have not applied a newer version since the last mark: how many, how many the broker ever dropped, a few. */
export interface Stragglers {
  type: 'stragglers';
  behind: number;
  dropped: number;
  sample: { id: string; applied: number; drops: number }[];
}
export type FromWorker =
  | { type: 'connected'; phones: number; ms: number }
  | { type: 'drops'; drops: number; reconnected: number }
  | { type: 'marked'; round: number }
  | { type: 'advanced'; round: number }
  | Stragglers
  | { type: 'error'; message: string }
  | { type: 'closed' };

const send = (m: FromWorker) => process.send!(m);
let phones: SimPhone[] = [];
// Each phone's version at the parent's last mark: a round is done when every phone applied a newer
// one. Not one version for all: instances that re-issue can leave phones on different versions.
let mark: { round: number; at: number[]; left: number; done: boolean[] } | null = null;

function advanced(j: number): void {
  if (!mark || mark.done[j] || phones[j]!.applied <= mark.at[j]!) return;
  mark.done[j] = true;
  if (--mark.left === 0) send({ type: 'advanced', round: mark.round });
}

async function connect(c: WorkerConnect): Promise<void> {
  const key = publicKeyFromText(c.publicKey);
  const n = c.to - c.from;
  phones = [];
  for (let i = c.from; i < c.to; i++) {
    const id = phoneId(i);
    phones.push(
      new SimPhone(
        id,
        phonePassword(c.seed, id),
        key,
        () => advanced(i - c.from),
        () => {},
        i % c.verifyEvery === 0,
      ),
    );
  }
  const t0 = performance.now();
  const index = new Map(phones.map((p, j) => [p, c.from + j]));
  // Phone i's connection, as every attempt makes it.
  const optsOf = (i: number) => ({
    protocolVersion: c.protocolVersion,
    subscribeQos: c.subscribeQos,
    publishQos: c.publishQos,
    retain: c.retain,
    localAddress: sourceAddress(i, c.perAddress),
  });
  let retried = 0;
  await windowed(phones, c.window, async (p) => {
    const i = index.get(p)!;
    // 10 minutes from this phone's first try: the whole storm of 100,000 phones on seven NATS
    // nodes takes about 18, and timed some out three times in a row.
    retried += await connectRetrying(p, i, c.ports, optsOf(i), 600_000);
  });
  if (retried > 0) process.stdout.write(`  worker ${c.from}-${c.to}: ${retried} connects tried again\n`);
  // A phone the broker drops connects again, as an agent does (its "online" status has the server re-push it).
  let drops = 0;
  let reconnected = 0;
  for (const [j, p] of phones.entries()) {
    const i = c.from + j;
    p.onDrop = () => {
      drops++;
      // After a random 0.5-5 s, as an agent's reconnect backoff (reconnectMinMs 500) spreads a
      // node's dropped phones: all at once, 8,868 dropped phones kept the 100,000-phone run's workers from answering.
      sleep(500 + Math.random() * 4500)
        .then(() => connectRetrying(p, i + 1, c.ports, optsOf(i), 600_000))
        .then(
          () => send({ type: 'drops', drops, reconnected: ++reconnected }),
          (err: Error) => send({ type: 'error', message: `${p.id} dropped and not connected again: ${err.message}` }),
        );
    };
  }
  send({ type: 'connected', phones: n, ms: performance.now() - t0 });
}

process.on('message', (m: ToWorker) => {
  if (m.type === 'connect') connect(m).catch((err: Error) => send({ type: 'error', message: `${err.name}: ${err.message}` }));
  else if (m.type === 'mark') {
    mark = { round: m.round, at: phones.map((p) => p.applied), left: phones.length, done: phones.map(() => false) };
    send({ type: 'marked', round: m.round });
    if (phones.length === 0) send({ type: 'advanced', round: m.round });
  } else if (m.type === 'stragglers') {
    const behind = phones.filter((_, j) => mark && !mark.done[j]);
    send({
      type: 'stragglers',
      behind: behind.length,
      dropped: behind.filter((p) => p.drops > 0).length,
      sample: behind.slice(0, 5).map((p) => ({ id: p.id, applied: p.applied, drops: p.drops })),
    });
  } else if (m.type === 'close') {
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
