// Builds the handset backend the configuration names. Nothing here opens a device:
// that happens in start(), so a missing MCU never stops the agent from starting.
import type { HalLogger } from '../log.js';
import type { Handset } from '../handset.js';
import { ConsoleHandset } from './console/console-handset.js';
import { McuHandset } from './mcu-handset.js';
import { nativePortFactory, SerialTransport } from './transport/serial.js';

export type HandsetBackendConfig = { backend: 'none' } | { backend: 'serial'; path: string; baudRate: number } | { backend: 'console' };

export interface HandsetFactoryDeps {
  log: HalLogger;
  agentVersion: string;
  /** For the console backend: what Ctrl-C in its terminal does. */
  onConsoleQuit?: () => void;
}

export async function createHandset(cfg: HandsetBackendConfig, deps: HandsetFactoryDeps): Promise<Handset | null> {
  switch (cfg.backend) {
    case 'none':
      return null;
    case 'serial':
      return new McuHandset({
        transport: new SerialTransport({ path: cfg.path, openPort: await nativePortFactory(cfg.path, cfg.baudRate), log: deps.log }),
        log: deps.log,
        agentVersion: deps.agentVersion,
      });
    case 'console':
      return new ConsoleHandset({
        log: deps.log,
        agentVersion: deps.agentVersion,
        input: process.stdin,
        output: process.stdout,
        onQuit: deps.onConsoleQuit ?? (() => process.kill(process.pid, 'SIGINT')),
      });
  }
}
