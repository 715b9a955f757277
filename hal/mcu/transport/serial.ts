// Serial transport: one serialport stream at a time. A port that fails to open,
// closes, errors or is unplugged is reopened with exponential backoff until stop().
// The port comes from a factory: SerialPort for a real device or a pty,
// SerialPortMock (serialport's MockBinding) in unit tests.
import type { HalLogger } from '../../log.js';
import type { ByteTransport, TransportListener } from './transport.js';

/** The part of a serialport stream this transport uses. */
export interface SerialPortLike {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  close(cb?: (err?: Error | null) => void): void;
  write(data: Buffer): boolean;
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'close', fn: (err?: Error | null) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  removeAllListeners(): unknown;
}

export type PortFactory = () => SerialPortLike;

export interface SerialTransportOptions {
  path: string;
  openPort: PortFactory;
  log: HalLogger;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export class SerialTransport implements ByteTransport {
  readonly name: string;
  reopens = 0;
  private port: SerialPortLike | null = null;
  private listener: TransportListener | null = null;
  private running = false;
  private up = false;
  private everUp = false;
  private attempt = 0;
  private downSince: number | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly minMs: number;
  private readonly maxMs: number;

  constructor(private readonly opts: SerialTransportOptions) {
    this.name = `serial:${opts.path}`;
    this.minMs = opts.backoffMinMs ?? 100;
    this.maxMs = opts.backoffMaxMs ?? 5000;
  }

  get isUp(): boolean {
    return this.up;
  }

  attach(listener: TransportListener): void {
    this.listener = listener;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.open();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const port = this.port;
    this.port = null;
    this.up = false;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    port?.removeAllListeners();
  }

  write(bytes: Buffer): void {
    if (this.up && this.port) this.port.write(bytes);
  }

  private open(): void {
    if (!this.running) return;
    let port: SerialPortLike;
    try {
      port = this.opts.openPort();
    } catch (err) {
      this.failed(`cannot create port: ${(err as Error).message}`);
      return;
    }
    this.port = port;
    // An 'error' with no listener would crash the process: always listen.
    port.on('error', (err) => this.lost(port, `port error: ${err.message}`));
    port.on('close', (err) => this.lost(port, err ? `port closed: ${err.message}` : 'port closed'));
    port.on('data', (chunk) => {
      if (this.port === port) this.listener?.data(chunk);
    });
    port.open((err) => {
      if (this.port !== port) return;
      if (err) {
        this.port = null;
        port.removeAllListeners();
        this.failed(`cannot open ${this.opts.path}: ${err.message}`);
        return;
      }
      if (!this.running) {
        port.close();
        return;
      }
      const downMs = this.downSince === null ? 0 : Date.now() - this.downSince;
      if (this.everUp) this.reopens++;
      this.opts.log.info(
        { path: this.opts.path, attempts: this.attempt + 1, downMs: this.everUp ? downMs : undefined },
        this.everUp ? 'serial port back' : 'serial port open',
      );
      this.everUp = true;
      this.up = true;
      this.attempt = 0;
      this.downSince = null;
      this.listener?.up();
    });
  }

  private lost(port: SerialPortLike, reason: string): void {
    if (this.port !== port) return; // a port we already gave up on
    this.port = null;
    port.removeAllListeners();
    port.on('error', () => {}); // late errors from a dead port are expected
    if (port.isOpen) port.close();
    const wasUp = this.up;
    this.up = false;
    if (!this.running) return;
    if (wasUp) {
      this.opts.log.warn({ path: this.opts.path, reason }, 'serial port lost; reopening with backoff');
      this.listener?.down(reason);
    }
    this.failed(reason);
  }

  private failed(reason: string): void {
    if (!this.running) return;
    this.downSince ??= Date.now();
    const delay = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt, 16));
    // The first failure is worth a warning; the rest of an outage only at debug.
    if (this.attempt === 0 && !this.everUp) this.opts.log.warn({ path: this.opts.path, reason }, 'serial port unavailable; retrying');
    else this.opts.log.debug({ path: this.opts.path, reason, attempt: this.attempt, delay }, 'serial port still unavailable');
    this.attempt++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }
}

/** Real ports (and ptys) through serialport's native binding, loaded only when used. */
export async function nativePortFactory(path: string, baudRate: number): Promise<PortFactory> {
  const { SerialPort } = await import('serialport');
  return () => new SerialPort({ path, baudRate, autoOpen: false });
}
