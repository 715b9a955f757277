// One server instance in its own process on a shared store and a NATS cluster, for the
// failover test (test/integration/failover-cluster.test.ts), which SIGKILLs it. Run from dist:
//   node dist/test/helpers/cluster-server.js '<json ClusterServerArgs>'
// It prints "READY" once started. Its log (warnings and worse; E911_TEST_LOG=debug for more) goes to stderr, which the
// test shows when something fails.
import { pino } from 'pino';
import { ServerApp } from '../../provisioning/server/app.js';
import type { KeyPairText } from '../../provisioning/protocol/signing.js';

export interface ClusterServerArgs {
  dataDir: string;
  /** postgres://... shared by every instance. */
  store: string;
  instance: string;
  /** Every node's MQTT URL, the one to try first first. */
  mqttUrls: string[];
  natsServers: string[];
  httpPort: number;
  keyPair: KeyPairText;
  offlineAfterMs: number;
  /** How long a claimed notification stays this instance's (the failover of a send cut short). */
  leaseMs: number;
  sendTimeoutMs: number;
}

/** The options both the test's set-up and the process use: the same instance, the same broker login. */
export function clusterServerApp(
  a: ClusterServerArgs,
  log = pino({ level: process.env.E911_TEST_LOG ?? 'warn' }, pino.destination(2)),
): ServerApp {
  return new ServerApp({
    dataDir: a.dataDir,
    store: a.store,
    log,
    keyPair: a.keyPair,
    broker: {
      url: a.mqttUrls[0]!,
      urls: a.mqttUrls,
      nats: { servers: a.natsServers },
      offlineAfterMs: a.offlineAfterMs,
      instance: a.instance,
    },
    http: { port: a.httpPort },
    notify: {
      retry: { baseMs: 100, maxMs: 400, maxAttempts: 50 },
      leaseMs: a.leaseMs,
      sendTimeoutMs: a.sendTimeoutMs,
    },
  });
}

// Only when run as the process (the test imports the types and clusterServerApp).
if (process.argv[1]?.endsWith('cluster-server.js')) {
  const args = JSON.parse(process.argv[2] ?? '{}') as ClusterServerArgs;
  const app = clusterServerApp(args);
  await app.start();
  process.on('SIGTERM', () => void app.stop().then(() => process.exit(0)));
  process.stdout.write('READY\n');
}
