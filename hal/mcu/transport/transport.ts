// Transport: moves bytes, knows nothing of frames. Backends: serial (a real port,
// a pty, or serialport's MockBinding in tests) and pipe (in-process, for the console
// backend). A transport that loses its device reopens it by itself.

export interface TransportListener {
  data(chunk: Buffer): void;
  /** The device is open (again). */
  up(): void;
  /** The device is gone; the transport is already trying to reopen it. */
  down(reason: string): void;
}

export interface ByteTransport {
  readonly name: string;
  readonly isUp: boolean;
  /** Times the device came back after being lost. */
  readonly reopens: number;
  attach(listener: TransportListener): void;
  /** Opens the device and keeps it open until stop(). Never throws for a missing device. */
  start(): void;
  stop(): Promise<void>;
  /** Writes if the device is up; otherwise drops the bytes (the link layer retries). */
  write(bytes: Buffer): void;
}
