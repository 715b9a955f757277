// A phone in your terminal, talking to the agent over a real serial line (a socat
// pty pair): keys you type become MCU key and hook frames; the display and LED
// frames the agent sends are drawn. The agent runs its real serial backend.
//
//   node dist/scripts/dev/phone-sim.js [--dir /tmp/e911-phone] [--port PATH] [--rows 4] [--cols 24]
//
// It prints the agent's end of the pair; start the agent with it, e.g.
//   E911_HANDSET=serial E911_MCU_PORT=/tmp/e911-phone/agent npm start
// With --port it opens an existing serial device or pty instead of making a pair.
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { startPtyPair, type PtyPair } from '../../hal/sim/pty-pair.js';
import { McuSimulator } from '../../hal/sim/mcu-simulator.js';
import { TerminalPhone } from '../../hal/sim/terminal-phone.js';
import { nativePortFactory, SerialTransport } from '../../hal/mcu/transport/serial.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const dir = path.resolve(arg('dir') ?? '/tmp/e911-phone');
const rows = Number(arg('rows') ?? 4);
const cols = Number(arg('cols') ?? 24);
let pair: PtyPair | null = null;
let port = arg('port');
if (!port) {
  pair = await startPtyPair(dir);
  port = pair.mcu;
}
// The terminal belongs to the phone: logs go to a file.
const logFile = path.join(pair ? dir : process.cwd(), 'phone-sim.log');
const log = pino({ level: 'debug' }, createWriteStream(logFile, { flags: 'a' }));
const transport = new SerialTransport({ path: port, openPort: await nativePortFactory(port, 115200), log });
let terminal: TerminalPhone | null = null;
const sim = new McuSimulator({ transport, log, rows, cols, firmware: 'phone-sim 1', onChange: () => terminal?.draw() });

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  terminal?.stop();
  await sim.stop();
  await pair?.stop();
  process.stdout.write('\n');
  process.exit(0);
};
const banner = pair
  ? `agent end: ${pair.agent}  ->  E911_HANDSET=serial E911_MCU_PORT=${pair.agent} npm start\nlog: ${logFile}`
  : `MCU end: ${port}  log: ${logFile}`;
terminal = new TerminalPhone({ sim, input: process.stdin, output: process.stdout, onQuit: () => void stop(), banner });
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

sim.start();
terminal.start();
