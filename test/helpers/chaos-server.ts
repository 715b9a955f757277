// The reference server in its own process, for the chaos tests that kill it
// (test/integration/chaos-server-kill.test.ts). Run from dist:
//   node dist/test/helpers/chaos-server.js '<json ChaosServerArgs>'
// With killAfterStore it SIGKILLs itself the moment its first emergency event is
// committed (event and notification rows), before mqtt.js sends the PUBACK and
// before the phone's events/ack: the window a crash can hit between store and ack.
// It prints "READY" once started, for the test to wait on.
import type { KeyPairText } from '../../provisioning/protocol/signing.js';
import { chaosServerApp } from './server-app.js';

export interface ChaosServerArgs {
  dataDir: string;
  brokerUrl: string;
  httpPort: number;
  keyPair: KeyPairText;
  smtpPort: number;
  deviceId: string;
  /** First start: the account, a location and a user with this phone. */
  setup: boolean;
  killAfterStore: boolean;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChaosServerArgs;
const app = await chaosServerApp(args);
await app.start();
if (args.killAfterStore) {
  app.link.setEventHandler(async (e) => {
    const stored = await app.intake.handleEvent(e);
    if (stored && e.type === 'emergency-call') process.kill(process.pid, 'SIGKILL');
    return stored;
  });
}
process.on('SIGTERM', () => void app.stop().then(() => process.exit(0)));
process.stdout.write('READY\n');
