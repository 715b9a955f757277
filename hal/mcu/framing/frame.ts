// Framing: bytes <-> frames, pure (no I/O, no timers). See docs/mcu-protocol.md.
//
//   SOF(0xA5) LEN SEQ TYPE PAYLOAD[LEN] CRC_HI CRC_LO
//
// CRC-16/CCITT-FALSE over LEN..PAYLOAD. No byte stuffing: the decoder resyncs by
// dropping one byte after any bad frame and scanning for the next SOF, so a frame
// that follows garbage or a truncated frame is still found.
import { crc16 } from './crc16.js';

export const SOF = 0xa5;
export const MAX_PAYLOAD = 64;
export const HEADER_BYTES = 4;
export const OVERHEAD_BYTES = HEADER_BYTES + 2;

export interface Frame {
  seq: number;
  type: number;
  payload: Buffer;
}

export function encodeFrame(f: Frame): Buffer {
  if (f.payload.length > MAX_PAYLOAD) throw new RangeError(`payload of ${f.payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  const buf = Buffer.alloc(OVERHEAD_BYTES + f.payload.length);
  buf[0] = SOF;
  buf[1] = f.payload.length;
  buf[2] = f.seq & 0xff;
  buf[3] = f.type & 0xff;
  f.payload.copy(buf, HEADER_BYTES);
  buf.writeUInt16BE(crc16(buf, 1, HEADER_BYTES + f.payload.length), HEADER_BYTES + f.payload.length);
  return buf;
}

export interface DecoderStats {
  frames: number;
  /** Bytes skipped while looking for a start byte. */
  garbageBytes: number;
  badCrc: number;
  badLength: number;
  /** Partial frames given up on (the sender stopped mid-frame). */
  truncated: number;
}

export type DropReason = 'garbage' | 'bad-crc' | 'bad-length' | 'truncated';

export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  readonly stats: DecoderStats = { frames: 0, garbageBytes: 0, badCrc: 0, badLength: 0, truncated: 0 };

  /** onDrop hears each rejected frame candidate, for logging. */
  constructor(private readonly onDrop: (reason: DropReason, skipped: number) => void = () => {}) {}

  /** Feeds received bytes; returns every complete, valid frame now available. */
  push(chunk: Buffer): Frame[] {
    // Own copy: the caller's buffer may be a pool it reuses.
    this.buf = Buffer.concat([this.buf, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      const sof = this.buf.indexOf(SOF);
      if (sof !== 0) {
        const skipped = sof < 0 ? this.buf.length : sof;
        if (skipped > 0) {
          this.stats.garbageBytes += skipped;
          this.onDrop('garbage', skipped);
        }
        this.buf = sof < 0 ? Buffer.alloc(0) : this.buf.subarray(sof);
        if (sof < 0) return frames;
      }
      if (this.buf.length < 2) return frames;
      const len = this.buf[1]!;
      if (len > MAX_PAYLOAD) {
        this.reject('bad-length');
        continue;
      }
      const total = OVERHEAD_BYTES + len;
      if (this.buf.length < total) return frames;
      const want = this.buf.readUInt16BE(HEADER_BYTES + len);
      if (crc16(this.buf, 1, HEADER_BYTES + len) !== want) {
        this.reject('bad-crc');
        continue;
      }
      // Copy out: the payload must not pin (or alias) the receive buffer.
      frames.push({ seq: this.buf[2]!, type: this.buf[3]!, payload: Buffer.from(this.buf.subarray(HEADER_BYTES, HEADER_BYTES + len)) });
      this.stats.frames++;
      this.buf = this.buf.subarray(total);
    }
  }

  /** Bytes of an incomplete frame are waiting. */
  get pending(): boolean {
    return this.buf.length > 0;
  }

  /**
   * The sender went quiet mid-frame: give up on that frame and rescan what came
   * after its start byte (a whole frame may be hiding behind a truncated one).
   */
  abandonPartial(): Frame[] {
    if (this.buf.length === 0) return [];
    this.reject('truncated');
    return this.push(Buffer.alloc(0));
  }

  reset(): void {
    this.buf = Buffer.alloc(0);
  }

  private reject(reason: DropReason): void {
    if (reason === 'bad-crc') this.stats.badCrc++;
    else if (reason === 'bad-length') this.stats.badLength++;
    else this.stats.truncated++;
    this.onDrop(reason, 1);
    // Drop only the start byte: the real next frame may begin inside this candidate.
    this.buf = this.buf.subarray(1);
  }
}
