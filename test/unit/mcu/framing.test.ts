// Framing: byte-exact frames, the CRC check value, and resync after garbage,
// corruption and truncation. Expected bytes were computed independently
// (a bitwise CRC-16/CCITT-FALSE in Python), not by the code under test.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc16 } from '../../../hal/mcu/framing/crc16.js';
import { encodeFrame, FrameDecoder, MAX_PAYLOAD, SOF, type Frame } from '../../../hal/mcu/framing/frame.js';
import { decodeMessage, encodeMessage } from '../../../hal/mcu/protocol/messages.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('CRC-16/CCITT-FALSE', () => {
  it('gives the catalogue check value 0x29B1 for "123456789"', () => {
    expect(crc16(Buffer.from('123456789', 'ascii'))).toBe(0x29b1);
  });
  it('is 0xFFFF (the init value) over nothing', () => {
    expect(crc16(Buffer.alloc(0))).toBe(0xffff);
  });
});

describe('encodeFrame', () => {
  it('lays out SOF LEN SEQ TYPE PAYLOAD CRC big-endian', () => {
    expect(encodeFrame({ seq: 7, type: 0x10, payload: Buffer.from([0x39, 0x01]) })).toEqual(hex('a5 02 07 10 39 01 e8 ed'));
    expect(encodeFrame({ seq: 7, type: 0x00, payload: Buffer.alloc(0) })).toEqual(hex('a5 00 07 00 55 0b'));
  });
  it('encodes typed messages to the documented bytes', () => {
    const line = encodeMessage({ type: 'display-line', row: 2, inverse: false, text: '911 ready' });
    expect(encodeFrame({ seq: 1, ...line })).toEqual(hex('a5 0b 01 20 02 00 39 31 31 20 72 65 61 64 79 9f 7e'));
    const led = encodeMessage({ type: 'led', led: 'alert', mode: 'blink-fast', color: 'red' });
    expect(encodeFrame({ seq: 0, ...led })).toEqual(hex('a5 03 00 22 00 03 01 5f a4'));
    const hook = encodeMessage({ type: 'hook', offHook: true });
    expect(encodeFrame({ seq: 3, ...hook })).toEqual(hex('a5 01 03 11 01 8b 47'));
  });
  it('refuses a payload longer than the maximum', () => {
    expect(() => encodeFrame({ seq: 0, type: 0x20, payload: Buffer.alloc(MAX_PAYLOAD + 1) })).toThrow(RangeError);
  });
  it('cuts display text at a character boundary, never inside one', () => {
    const m = encodeMessage({ type: 'display-line', row: 0, inverse: false, text: 'é'.repeat(40) });
    expect(m.payload.length).toBeLessThanOrEqual(MAX_PAYLOAD);
    const back = decodeMessage(m.type, m.payload);
    expect(back.ok && back.msg.type === 'display-line' && back.msg.text).toBe('é'.repeat(31));
  });
});

describe('FrameDecoder', () => {
  const key9 = hex('a5 02 07 10 39 01 e8 ed');
  const ack7 = hex('a5 00 07 00 55 0b');

  it('decodes a frame fed one byte at a time', () => {
    const d = new FrameDecoder();
    const out: Frame[] = [];
    for (const b of key9) out.push(...d.push(Buffer.from([b])));
    expect(out).toEqual([{ seq: 7, type: 0x10, payload: Buffer.from([0x39, 0x01]) }]);
    expect(d.pending).toBe(false);
  });

  it('skips garbage before, between and after frames', () => {
    const d = new FrameDecoder();
    const out = d.push(Buffer.concat([hex('00 ff 13 37'), key9, hex('42 42'), ack7, hex('99')]));
    expect(out.map((f) => f.type)).toEqual([0x10, 0x00]);
    expect(d.stats.garbageBytes).toBe(7);
  });

  it('drops a frame with a bad CRC and finds the next one', () => {
    const bad = Buffer.from(key9);
    bad[4] = 0x38; // '8' instead of '9': CRC no longer matches
    const d = new FrameDecoder();
    const reasons: string[] = [];
    const d2 = new FrameDecoder((r) => reasons.push(r));
    expect(d.push(Buffer.concat([bad, ack7])).map((f) => f.seq)).toEqual([7]);
    expect(d.stats.badCrc).toBe(1);
    d2.push(bad);
    expect(reasons).toContain('bad-crc');
  });

  it('rejects a length above the maximum at once instead of waiting for it', () => {
    const d = new FrameDecoder();
    expect(d.push(Buffer.concat([hex('a5 ff'), key9])).map((f) => f.seq)).toEqual([7]);
    expect(d.stats.badLength).toBe(1);
  });

  it('finds a whole frame that arrived inside a truncated one', () => {
    // A frame cut off after 3 bytes; its LEN (0x20) swallows the next frame while waiting.
    const d = new FrameDecoder();
    expect(d.push(Buffer.concat([hex('a5 20 01'), key9]))).toEqual([]);
    expect(d.pending).toBe(true);
    // The sender went quiet: the link layer's gap timer gives up on the partial frame.
    const out = d.abandonPartial();
    expect(out.map((f) => f.payload)).toEqual([Buffer.from([0x39, 0x01])]);
    expect(d.stats.truncated).toBe(1);
  });

  it('recovers every frame from any mix of SOF-free garbage and frames, split anywhere', () => {
    const frameArb = fc.record({
      seq: fc.integer({ min: 0, max: 255 }),
      type: fc.integer({ min: 0, max: 255 }),
      payload: fc.uint8Array({ maxLength: MAX_PAYLOAD }).map((a) => Buffer.from(a)),
    });
    const garbageArb = fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a.filter((b) => b !== SOF)));
    fc.assert(
      fc.property(fc.array(fc.tuple(garbageArb, frameArb), { maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 17 })), (parts, cuts) => {
        const stream = Buffer.concat(parts.flatMap(([g, f]) => [g, encodeFrame(f)]));
        const d = new FrameDecoder();
        const out: Frame[] = [];
        let pos = 0;
        for (let i = 0; pos < stream.length; i++) {
          const n = cuts.length ? cuts[i % cuts.length]! : stream.length;
          out.push(...d.push(stream.subarray(pos, pos + n)));
          pos += n;
        }
        expect(out).toEqual(parts.map(([, f]) => f));
      }),
    );
  });

  it('recovers every frame when the garbage holds start-of-frame bytes (false starts), split anywhere', () => {
    const frameArb = fc.record({
      seq: fc.integer({ min: 0, max: 255 }),
      type: fc.integer({ min: 0, max: 255 }),
      payload: fc.uint8Array({ maxLength: MAX_PAYLOAD }).map((a) => Buffer.from(a)),
    });
    // Garbage rich in SOF, and in SOF followed by a small LEN: false frame starts that swallow real frames while they wait.
    const garbageArb = fc
      .array(
        fc.oneof(
          fc.constant([SOF]),
          fc.constant([SOF, 0]),
          fc.tuple(fc.constant(SOF), fc.integer({ min: 0, max: 8 })),
          fc.tuple(fc.integer({ min: 0, max: 255 })),
        ),
        { maxLength: 12 },
      )
      .map((chunks) => Buffer.from(chunks.flat()));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(garbageArb, frameArb), { maxLength: 8 }),
        garbageArb,
        fc.array(fc.integer({ min: 1, max: 17 })),
        (parts, tail, cuts) => {
          const pieces = parts.flatMap(([g, f]) => [
            { bytes: g, real: false },
            { bytes: encodeFrame(f), real: true },
          ]);
          pieces.push({ bytes: tail, real: false });
          const stream = Buffer.concat(pieces.map((p) => p.bytes));
          // A CRC-valid frame starting inside the garbage is a real frame as far as any decoder
          // can tell (1 in 65536 per false start): such inputs prove nothing, skip them.
          let at = 0;
          for (const piece of pieces) {
            if (!piece.real) for (let i = 0; i < piece.bytes.length; i++) if (piece.bytes[i] === SOF) fc.pre(!validFrameAt(stream, at + i));
            at += piece.bytes.length;
          }
          const d = new FrameDecoder();
          const out: Frame[] = [];
          let pos = 0;
          for (let i = 0; pos < stream.length; i++) {
            const n = cuts.length ? cuts[i % cuts.length]! : stream.length;
            out.push(...d.push(stream.subarray(pos, pos + n)));
            pos += n;
          }
          // The sender goes quiet: the link's gap timer gives up on whatever false start still waits.
          for (let guard = 0; d.pending && guard < stream.length; guard++) out.push(...d.abandonPartial());
          expect(out).toEqual(parts.map(([, f]) => f));
          expect(d.stats.frames).toBe(parts.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Whether a whole CRC-valid frame starts at stream[i]. */
function validFrameAt(stream: Buffer, i: number): boolean {
  if (stream[i] !== SOF || i + 2 > stream.length) return false;
  const len = stream[i + 1]!;
  if (len > MAX_PAYLOAD || i + 6 + len > stream.length) return false;
  return crc16(stream, i + 1, i + 4 + len) === stream.readUInt16BE(i + 4 + len);
}
