// The framer between the broker's socket and mqtt.js (agent/link/publish-framer.ts): a large
// PUBLISH on the locations topic has its body taken to a sink as it arrives, and mqtt.js gets
// a stand-in with the same flags, topic, packet id and properties; everything else passes
// through unchanged. Fed split at every byte boundary, byte by byte, and in one chunk; MQTT
// 3.1.1 and 5; QoS 0, 1 and 2. The output is read back by mqtt-packet, as mqtt.js reads it.
import mqttPacket, { type Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { PublishFramer, type BodySink, type BodyStream } from '../../agent/link/publish-framer.js';

const TOPIC = 'e911/phone-1/locations/set';
const THRESHOLD = 80;
const MAX_BODY = 250;

type Handle = { id: number; bytes: Buffer };

/** A sink that keeps what it was given, and what was aborted or discarded. */
function recordingSink() {
  let next = 1;
  const opened: number[] = [];
  const aborted: number[] = [];
  const discarded: number[] = [];
  const sink: BodySink<Handle> = {
    open(length): BodyStream<Handle> {
      const id = next++;
      opened.push(length);
      const pieces: Buffer[] = [];
      return {
        // Copied: the chunk is a view of the socket's buffer, valid only during the call.
        write: (chunk) => void pieces.push(Buffer.from(chunk)),
        end: () => ({ id, bytes: Buffer.concat(pieces) }),
        abort: () => void aborted.push(id),
      };
    },
    discard: (h) => void discarded.push(h.id),
  };
  return { sink, opened, aborted, discarded };
}

const body = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

function packets(version: 4 | 5): Packet[] {
  const props5 =
    version === 5 ? { properties: { contentType: 'application/json', userProperties: { a: 'b' }, messageExpiryInterval: 60 } } : {};
  return [
    { cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false } as Packet,
    { cmd: 'suback', messageId: 1, granted: [1, 1] } as Packet,
    // Small, on our topic: passes through.
    { cmd: 'publish', topic: TOPIC, payload: body(5, 1), qos: 1, messageId: 7, retain: true, dup: false, ...props5 } as Packet,
    // Large, QoS 0, retained: taken.
    { cmd: 'publish', topic: TOPIC, payload: body(100, 2), qos: 0, retain: true, dup: false, ...props5 } as Packet,
    { cmd: 'puback', messageId: 3 } as Packet,
    // Large, on another topic: passes through.
    { cmd: 'publish', topic: 'e911/phone-1/config/set', payload: body(130, 3), qos: 1, messageId: 8, retain: false, dup: false } as Packet,
    // Large, QoS 1: taken.
    { cmd: 'publish', topic: TOPIC, payload: body(160, 4), qos: 1, messageId: 9, retain: false, dup: false, ...props5 } as Packet,
    { cmd: 'pingresp' } as Packet,
    // Large, QoS 2, a duplicate: taken.
    { cmd: 'publish', topic: TOPIC, payload: body(MAX_BODY, 5), qos: 2, messageId: 10, retain: false, dup: true, ...props5 } as Packet,
    // Over the bound: dropped as it arrives, the stand-in says how large it was.
    { cmd: 'publish', topic: TOPIC, payload: body(MAX_BODY + 1, 6), qos: 1, messageId: 11, retain: false, dup: false, ...props5 } as Packet,
    { cmd: 'publish', topic: TOPIC, payload: Buffer.from('{"v":1}'), qos: 0, retain: false, dup: false } as Packet,
  ];
}

function encode(ps: Packet[], version: 4 | 5): Buffer {
  return Buffer.concat(ps.map((p) => mqttPacket.generate(p, { protocolVersion: version })));
}

function parse(bytes: Buffer, version: 4 | 5): Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: version });
  const out: Packet[] = [];
  const errors: Error[] = [];
  parser.on('packet', (p) => out.push(p));
  parser.on('error', (e) => errors.push(e));
  parser.parse(bytes);
  if (errors.length) throw errors[0];
  return out;
}

/** Feeds the chunks; returns what mqtt.js would read, and the framer. */
function feed(chunks: Buffer[], version: 4 | 5, enabled = () => true) {
  const rec = recordingSink();
  const framer = new PublishFramer<Handle>({
    topic: TOPIC,
    protocolVersion: version,
    threshold: THRESHOLD,
    maxBody: MAX_BODY,
    sink: rec.sink,
    enabled,
  });
  const out: Buffer[] = [];
  for (const c of chunks) out.push(...framer.push(c));
  return { out: Buffer.concat(out), framer, ...rec };
}

function splitAt(b: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...cuts, b.length]) {
    // Copies: each chunk its own memory, as the socket's are.
    out.push(Buffer.from(b.subarray(from, c)));
    from = c;
  }
  return out;
}

/** The packets as mqtt-packet reads them unframed: made once per version (the split tests call checkOutput thousands of times). */
const originals = new Map<4 | 5, Packet[]>();

function checkOutput(version: 4 | 5, chunks: Buffer[]) {
  const sent = packets(version);
  const { out, framer, opened } = feed(chunks, version);
  const got = parse(out, version);
  expect(got.length).toBe(sent.length);
  if (!originals.has(version)) originals.set(version, parse(encode(sent, version), version));
  const original = originals.get(version)!;
  for (let i = 0; i < sent.length; i++) {
    const want = original[i]! as Packet & { payload?: Buffer; topic?: string };
    const have = got[i]! as Packet & { payload?: Buffer; topic?: string };
    // Taken by the packet's remaining length (known at its first bytes), properties included.
    const taken = want.cmd === 'publish' && want.topic === TOPIC && (want.length ?? 0) > THRESHOLD;
    if (!taken) {
      expect(have).toEqual(want);
      continue;
    }
    // The stand-in: every field as sent, the payload a marker naming what the sink took.
    const { payload: wantPayload, length: _l1, ...wantRest } = want as Packet & { payload: Buffer; length: number };
    const { payload: marker, length: _l2, ...haveRest } = have as Packet & { payload: Buffer; length: number };
    expect(haveRest).toEqual(wantRest);
    const standIn = framer.take(marker);
    if (wantPayload.length > MAX_BODY) {
      expect(standIn).toEqual({ kind: 'too-large', length: wantPayload.length });
    } else {
      expect(standIn?.kind).toBe('streamed');
      expect((standIn as { handle: Handle }).handle.bytes.equals(wantPayload)).toBe(true);
      // Taken once.
      expect(framer.take(marker)).toBeNull();
    }
  }
  // Nothing over the bound was opened (never held anywhere).
  expect(opened).toEqual([100, 160, MAX_BODY]);
  // A small payload is never mistaken for a stand-in.
  expect(framer.take(Buffer.from('{"v":1}'))).toBeNull();
}

describe('the publish framer', () => {
  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 4 ? '3.1.1' : '5'}: several packets in one chunk`, () => {
      checkOutput(version, [encode(packets(version), version)]);
    });

    it(`MQTT ${version === 4 ? '3.1.1' : '5'}: split in two at every byte boundary`, () => {
      const all = encode(packets(version), version);
      // Checked field by field at a few cuts; at every cut, the same bytes to mqtt.js and the same bodies to
      // the sink as from one chunk (the stand-ins' ids included: each run has its own framer).
      for (const cut of [1, 2, 3, 40, 200, all.length - 1]) checkOutput(version, splitAt(all, [cut]));
      const whole = feed([all], version);
      const bodies = (f: ReturnType<typeof feed>) =>
        parse(f.out, version).map((p) => f.framer.take((p as { payload?: Buffer }).payload ?? Buffer.alloc(0)));
      const wholeBodies = bodies(whole);
      for (let cut = 1; cut < all.length; cut++) {
        const f = feed(splitAt(all, [cut]), version);
        if (!f.out.equals(whole.out)) expect.fail(`cut at ${cut}: different bytes to mqtt.js`);
        expect(bodies(f)).toEqual(wholeBodies);
      }
    });

    it(`MQTT ${version === 4 ? '3.1.1' : '5'}: one byte at a time, and random splits`, () => {
      const all = encode(packets(version), version);
      checkOutput(
        version,
        Array.from({ length: all.length }, (_, i) => all.subarray(i, i + 1)),
      );
      let seed = 7;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed / 0x7fffffff;
      };
      for (let round = 0; round < 200; round++) {
        const cuts = [
          ...new Set(Array.from({ length: 1 + Math.floor(rand() * 12) }, () => 1 + Math.floor(rand() * (all.length - 1)))),
        ].sort((a, b) => a - b);
        checkOutput(version, splitAt(all, cuts));
      }
    });
  }

  it('with nothing to take, passes the socket chunks through as they are (no copy)', () => {
    // No large PUBLISH: those have their variable header held while the topic is read.
    const ps = packets(4).filter((p) => !(p.cmd === 'publish' && (p.payload as Buffer).length > 50));
    // Chunks that end where packets end (a header split across chunks is held, then copied).
    const chunks = [encode(ps.slice(0, 2), 4), ...ps.slice(2).map((p) => encode([p], 4))];
    const rec = recordingSink();
    const framer = new PublishFramer<Handle>({ topic: TOPIC, protocolVersion: 4, threshold: THRESHOLD, maxBody: MAX_BODY, sink: rec.sink });
    for (const c of chunks) expect(framer.push(c)).toEqual([c]);
    expect(rec.opened).toEqual([]);
  });

  it('turned off (the benchmark A/B), passes every packet through unchanged', () => {
    const all = encode(packets(5), 5);
    const { out, opened } = feed(splitAt(all, [200, 700]), 5, () => false);
    expect(out.equals(all)).toBe(true);
    expect(opened).toEqual([]);
  });

  it('a malformed remaining length stops the framing: every byte goes on, mqtt-packet reports it', () => {
    const good = encode(packets(4).slice(0, 4), 4);
    const bad = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 2, 3]);
    const all = Buffer.concat([good, bad, encode(packets(4).slice(3), 4)]);
    for (const cut of [good.length + 2, good.length + 5, all.length - 3]) {
      const { out, framer } = feed(splitAt(all, [cut]), 4);
      expect(framer.broken).toBe(true);
      // The first packets are framed (one taken), the rest as it came.
      const tail = out.subarray(out.indexOf(bad));
      expect(tail.equals(all.subarray(all.indexOf(bad)))).toBe(true);
      expect(() => parse(out, 4)).toThrow();
    }
  });

  it('a topic length past the packet passes the packet through (mqtt-packet refuses it)', () => {
    // Remaining 120 bytes, topic length 0xffff.
    const bad = Buffer.concat([Buffer.from([0x30, 120, 0xff, 0xff]), Buffer.alloc(118, 0x61)]);
    const all = Buffer.concat([bad, encode(packets(4).slice(0, 2), 4)]);
    const { out, opened } = feed(splitAt(all, [3, 50]), 4);
    expect(out.equals(all)).toBe(true);
    expect(opened).toEqual([]);
  });

  it('the connection closing mid-body aborts the body; stand-ins never delivered are discarded', () => {
    const all = encode(packets(4), 4);
    const big = packets(4)[6]!;
    const at = all.indexOf(mqttPacket.generate(big, { protocolVersion: 4 }));
    const { framer, aborted, discarded } = feed([all.subarray(0, at + 100)], 4);
    framer.close();
    // The first large body (id 1) ended and was never taken; the second (id 2) was arriving.
    expect(discarded).toEqual([1]);
    expect(aborted).toEqual([2]);
  });

  it('keeps only the newest few stand-ins not taken (QoS 2 duplicates mqtt.js dropped)', () => {
    const p = { cmd: 'publish', topic: TOPIC, payload: body(90, 9), qos: 2, messageId: 4, retain: false, dup: true } as Packet;
    const all = encode(
      Array.from({ length: 7 }, () => p),
      4,
    );
    const { discarded } = feed([all], 4);
    expect(discarded).toEqual([1, 2, 3]);
  });
});
