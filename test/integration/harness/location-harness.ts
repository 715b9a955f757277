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
import type { FunctionKey } from '../../../hal/handset.js';
import { EmergencyService } from '../../../agent/emergency/service.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../../agent/emergency/config.js';
import { createPjsipVoiceStack } from '../../../hal/voice/pjsip/index.js';

interface HarnessConfig {
  dataDir: string;
  deviceId: string;
  serverPublicKey: string;
  network: unknown;
  address?: StoredAddress;
  /** With it, the real emergency path (PJSIP addon at addonPath) follows the location service, as in agent/root.ts. */
  emergency?: { addonPath: string; sip: unknown; emergency: unknown };
}

const cfg = JSON.parse(process.argv[2]!) as HarnessConfig;
const out = (o: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ...o, at: performance.timeOrigin + performance.now() })}\n`);
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
let alertKeys: ((k: FunctionKey) => boolean) | null = null;
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
      alertKeys = a.onKey ?? null;
      out({ t: 'alert', id: a.id, lines: a.lines });
    },
    clear: (id) => out({ t: 'alert-clear', id }),
  },
});
let emergency: EmergencyService | null = null;
if (cfg.emergency) {
  const e = cfg.emergency;
  emergency = new EmergencyService({
    voice: createPjsipVoiceStack({ logger: log, addonPath: e.addonPath }),
    emergency: emergencySchema.parse(e.emergency),
    dialPlan: dialPlanSchema.parse({}),
    sip: sipSchema.parse(e.sip),
    deviceId: cfg.deviceId,
    agentVersion: 'harness',
    log,
    emitEvent: (type, data) => {
      store.enqueue(eventFactory(cfg.deviceId)(type, data));
      flushEvents();
    },
  });
  await emergency.start(cfg.address ?? null);
  // The same wiring as agent/root.ts: first and second location, ELIN.
  const civicOf = (l: ReturnType<typeof parts.service.best>) =>
    l && l.kind === 'civic' && l.civic ? { civic: l.civic, method: l.method, source: l.source } : null;
  parts.service.onBestChange(() => {
    const c = parts.service.callLocations();
    emergency!.setLocation(civicOf(c.first), { alternate: civicOf(c.second), elin: c.elin });
  });
}
parts.network.on('change', (c) => out({ t: 'change', reasons: c.reasons, snapshot: c.snapshot }));
parts.lldp?.on('neighbors', (n) => out({ t: 'lldp', neighbors: n }));

await parts.start();
flushEvents();
out({ t: 'ready', writes: store.writes });

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line) as { cmd: string; id?: string; payload?: string };
  try {
    if (cmd.cmd === 'stop') {
      void parts
        .stop()
        .then(() => emergency?.stop())
        .then(() => {
          out({ t: 'stopped', writes: store.writes });
          store.close();
          process.exit(0);
        });
    } else if (cmd.cmd === 'select') {
      out({ t: 'selected', result: parts.service.select(cmd.id!) });
    } else if (cmd.cmd === 'locations') {
      void parts.handleLocationsPush(cmd.payload!).then((result) => out({ t: 'locations', result }));
    } else if (cmd.cmd === 'list') {
      out({ t: 'list', result: parts.service.list(), best: parts.service.best(), writes: store.writes });
    } else if (cmd.cmd === 'key') {
      out({ t: 'key', consumed: alertKeys?.(cmd.id as FunctionKey) ?? false });
    } else if (cmd.cmd === 'dial') {
      out({ t: 'dialed', result: emergency ? emergency.dial(cmd.id!) : null });
    } else if (cmd.cmd === 'hangup') {
      out({ t: 'hangup', result: emergency?.hangup() ?? null });
    } else if (cmd.cmd === 'refresh') {
      parts.network.refresh();
    }
  } catch (err) {
    out({ t: 'error', message: (err as Error).message });
  }
});
