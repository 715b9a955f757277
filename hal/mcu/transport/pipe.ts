// An in-process byte pipe: two transports wired back to back. The console backend
// puts the simulated MCU on one end and the agent's MCU stack on the other, so the
// whole protocol runs even without a serial port.
import type { ByteTransport, TransportListener } from './transport.js';

class PipeEnd implements ByteTransport {
  readonly reopens = 0;
  peer!: PipeEnd;
  private listener: TransportListener | null = null;
  private running = false;

  constructor(readonly name: string) {}

  get isUp(): boolean {
    return this.running && this.peer.running;
  }

  attach(listener: TransportListener): void {
    this.listener = listener;
  }

  start(): void {
    this.running = true;
    if (this.peer.running) {
      this.listener?.up();
      this.peer.listener?.up();
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.peer.running) this.peer.listener?.down('peer stopped');
  }

  write(bytes: Buffer): void {
    if (!this.isUp) return;
    const copy = Buffer.from(bytes);
    // Asynchronous like a real wire: a write never re-enters the writer.
    setImmediate(() => this.peer.running && this.peer.listener?.data(copy));
  }
}

export function pipePair(): [ByteTransport, ByteTransport] {
  const a = new PipeEnd('pipe:host');
  const b = new PipeEnd('pipe:mcu');
  a.peer = b;
  b.peer = a;
  return [a, b];
}
