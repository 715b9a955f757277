// A serial line made of serialport's MockBinding: the agent's SerialTransport opens a
// SerialPortMock; this wire records every byte the agent writes (byte-exact) and can
// play the MCU end, either by hand (emit) or with the simulated MCU attached as its
// transport. It can also pull the plug (vanish) and put it back (restore).
import { SerialPortMock } from 'serialport';
import type { ByteTransport, TransportListener } from '../../hal/mcu/transport/transport.js';
import type { SerialPortLike } from '../../hal/mcu/transport/serial.js';

/**
 * The MockBinding instance SerialPortMock really uses: serialport is CommonJS, so an
 * ESM import of @serialport/binding-mock would give a second copy with its own ports.
 */
export const MockBinding = SerialPortMock.binding;

/** The part of MockPortBinding used here (its package's types do not resolve under NodeNext). */
interface MockPortBinding {
  readonly isOpen: boolean;
  emitData(data: Buffer): void;
  write(buf: Buffer): Promise<void>;
}

export class MockMcuWire implements ByteTransport {
  readonly name = 'mock-wire';
  readonly reopens = 0;
  /** Every write of the agent, in order, across reopens. */
  readonly written: Buffer[] = [];
  opened = 0;
  private binding: MockPortBinding | null = null;
  private listener: TransportListener | null = null;

  constructor(readonly path: string) {
    MockBinding.createPort(path);
  }

  /** The agent side's port factory (SerialTransportOptions.openPort). */
  readonly openPort = (): SerialPortLike => {
    const port = new SerialPortMock({ path: this.path, baudRate: 115200, autoOpen: false });
    port.on('open', () => this.connected(port.port as unknown as MockPortBinding));
    return port;
  };

  get isUp(): boolean {
    return this.binding?.isOpen ?? false;
  }

  /** All bytes the agent wrote, as one buffer. */
  bytes(): Buffer {
    return Buffer.concat(this.written);
  }

  /** Bytes from the MCU to the agent. */
  emit(bytes: Buffer): void {
    this.binding?.emitData(bytes);
  }

  /** The device disappears (USB unplugged): the read fails, the port is gone until restore(). */
  vanish(): void {
    const b = this.binding;
    this.binding = null;
    MockBinding.reset();
    this.listener?.down('unplugged');
    // What the OS does to a pending read when the device goes: an I/O error (not a cancel).
    (b as unknown as { pendingRead: ((err: Error) => void) | null } | null)?.pendingRead?.(new Error('EIO: device disconnected'));
  }

  restore(): void {
    MockBinding.createPort(this.path);
  }

  // ByteTransport for a simulated MCU on the far end.
  attach(listener: TransportListener): void {
    this.listener = listener;
  }
  start(): void {
    if (this.isUp) this.listener?.up();
  }
  async stop(): Promise<void> {
    this.listener = null;
  }
  write(bytes: Buffer): void {
    if (this.binding?.isOpen) this.binding.emitData(bytes);
  }

  private connected(binding: MockPortBinding): void {
    this.binding = binding;
    this.opened++;
    const write = binding.write.bind(binding);
    binding.write = async (buf: Buffer) => {
      await write(buf);
      const copy = Buffer.from(buf);
      this.written.push(copy);
      setImmediate(() => this.listener?.data(copy));
    };
    this.listener?.up();
  }
}
