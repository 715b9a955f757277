// Runs the agent's real network and location parts (LocationParts over a real
// SQLite store) inside a network namespace, for the netns tests: started by
// `ip netns exec <ns> node <bundle> <config-json>`. It prints one JSON line per
// thing a test looks at: network changes, LLDP neighbours, location reports and
// every event queued in the outbox. Commands come on stdin, one JSON per line.
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { hostPaths } from '../../../hal/host.js';
import { Store } from '../../../agent/store/store.js';
import { eventFactory } from '../../../agent/events/events.js';
import { LocationParts } from '../../../agent/location/parts.js';
import { networkSchema } from '../../../agent/location/config.js';
import { publicKeyFromText } from '../../../provisioning/protocol/signing.js';
import type { StoredAddress } from '../../../agent/store/store.js';

interface HarnessConfig {
  dataDir: string;
  deviceId: string;
  serverPublicKey: string;
  network: unknown;
  address?: StoredAddress;
}

const cfg = JSON.parse(process.argv[2]!) as HarnessConfig;
const out = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...o, at: performance.timeOrigin + performance.now() })}\n`);
const log = pino({ level: process.env.HARNESS_LOG ?? 'warn' }, pino.destination(2));
const store = new Store({ dataDir: cfg.dataDir, log });
let lastSeq = 0;
const flushEvents = () => {
  for (const row of store.pendingEvents(lastSeq, 1000)) {
    lastSeq = row.seq;
    out({ t: 'event', event: JSON.parse(row.payload) });
  }
};
const alerts: string[][] = [];
const parts = new LocationParts({
  config: networkSchema.parse(cfg.network),
  host: hostPaths(process.env),
  log,
  store,
  deviceId: cfg.deviceId,
  serverKey: publicKeyFromText(cfg.serverPublicKey),
  newEvent: eventFactory(cfg.deviceId),
  wake: flushEvents,
  publishReport: (p) => out({ t: 'report', payload: p }),
  address: () => cfg.address ?? null,
  alerts: {
    raise: (a) => {
      alerts.push([...a.lines]);
      out({ t: 'alert', id: a.id, lines: a.lines });
    },
    clear: (id) => out({ t: 'alert-clear', id }),
  },
});
parts.network.on('change', (c) => out({ t: 'change', reasons: c.reasons, snapshot: c.snapshot }));
parts.lldp?.on('neighbors', (n) => out({ t: 'lldp', neighbors: n }));

await parts.start();
flushEvents();
out({ t: 'ready', writes: store.writes });

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line) as { cmd: string; id?: string; payload?: string };
  try {
    if (cmd.cmd === 'stop') {
      void parts.stop().then(() => {
        out({ t: 'stopped', writes: store.writes });
        store.close();
        process.exit(0);
      });
    } else if (cmd.cmd === 'select') {
      out({ t: 'selected', result: parts.service.select(cmd.id!) });
    } else if (cmd.cmd === 'locations') {
      out({ t: 'locations', result: parts.handleLocationsPush(cmd.payload!) });
    } else if (cmd.cmd === 'list') {
      out({ t: 'list', result: parts.service.list(), best: parts.service.best(), writes: store.writes });
    } else if (cmd.cmd === 'refresh') {
      parts.network.refresh();
    }
  } catch (err) {
    out({ t: 'error', message: (err as Error).message });
  }
});
