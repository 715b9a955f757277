// Console backend: the agent's own terminal is the phone. The simulated MCU and the
// agent's MCU stack talk over an in-process pipe, so framing, acks and the protocol
// all run exactly as with a serial MCU; only the wire is missing.
import type { HalLogger } from '../../log.js';
import { McuSimulator } from '../../sim/mcu-simulator.js';
import { TerminalPhone } from '../../sim/terminal-phone.js';
import { McuHandset } from '../mcu-handset.js';
import { pipePair } from '../transport/pipe.js';
import type { ByteTransport } from '../transport/transport.js';

export interface ConsoleHandsetOptions {
  log: HalLogger;
  agentVersion: string;
  input: NodeJS.ReadStream;
  output: NodeJS.WritableStream;
  /** Ctrl-C in the terminal: the agent decides what stopping means. */
  onQuit: () => void;
}

export class ConsoleHandset extends McuHandset {
  private readonly sim: McuSimulator;
  private readonly terminal: TerminalPhone;

  constructor(opts: ConsoleHandsetOptions) {
    const [host, mcu]: [ByteTransport, ByteTransport] = pipePair();
    super({ transport: host, log: opts.log, agentVersion: opts.agentVersion });
    this.sim = new McuSimulator({ transport: mcu, log: opts.log, onChange: () => this.terminal.draw() });
    this.terminal = new TerminalPhone({ sim: this.sim, input: opts.input, output: opts.output, onQuit: opts.onQuit });
  }

  override async start(): Promise<void> {
    this.sim.start();
    await super.start();
    this.terminal.start();
  }

  override async stop(): Promise<void> {
    this.terminal.stop();
    await super.stop();
    await this.sim.stop();
  }
}
