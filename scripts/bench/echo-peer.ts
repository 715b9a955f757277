// Baseline peer for the link benchmark: a bare mqtt.js client in its own process that
// answers every message on <prefix>/ping with the same payload on <prefix>/pong.
import mqtt from 'mqtt';

const [url, prefix] = process.argv.slice(2) as [string, string];
const client = await mqtt.connectAsync(url, { protocolVersion: 5, clean: true });
(client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true); // as the agent does
client.on('message', (_t, payload) => client.publish(`${prefix}/pong`, payload, { qos: 1 }));
await client.subscribeAsync(`${prefix}/ping`, { qos: 1 });
process.stdout.write('ready\n');
process.on('SIGTERM', () => void client.endAsync().then(() => process.exit(0)));
