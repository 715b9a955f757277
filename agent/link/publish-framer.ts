// Between the broker's socket and mqtt.js: reads each MQTT packet's fixed header as the
// bytes arrive, and takes the body of a large PUBLISH on one topic (this phone's
// locations/set) out of the stream, chunk by chunk, to a sink (the locations worker).
// mqtt.js gets, once the body has all arrived, a small stand-in PUBLISH: the same fixed
// header flags, topic, packet id and (MQTT 5) properties, with a short marker as its
// payload. QoS 1/2 acks, the retain and dup flags and the order of packets are mqtt.js's
// as before, but a 2 MiB push is never assembled on the main thread: mqtt-packet's copy of
// the whole packet out of its BufferList (~5 ms in one turn under load, plus 2 MiB of
// external memory a push, which brought GCs forward) is gone (issue 14).
//
// Everything else passes through as the socket's own chunks. Anything the framer cannot
// read (a malformed length, properties too long to hold) makes it stop framing for the
// rest of the connection and pass every byte on: mqtt-packet then reports the error as
// it did before.
import { Transform, type TransformCallback } from 'node:stream';

/** Where a taken body goes: opened when its length is known, ended when it has all arrived. */
export interface BodySink<H> {
  /** A body of `length` bytes begins. */
  open(length: number): BodyStream<H>;
  /** A handle mqtt.js never delivered (the connection closed, or a QoS 2 duplicate it dropped). */
  discard(handle: H): void;
}
export interface BodyStream<H> {
  /** A piece of the body: valid only during the call (a view of the socket's chunk). */
  write(chunk: Uint8Array): void;
  /** The whole body has arrived: the handle mqtt.js's stand-in will be matched to. */
  end(): H;
  /** The connection ended before the body did. */
  abort(): void;
}

export interface PublishFramerOptions<H> {
  /** The topic whose large PUBLISH bodies are taken (exact match). */
  topic: string;
  /** MQTT protocol level of the connection (4: 3.1.1, 5: properties after the packet id). */
  protocolVersion: 4 | 5;
  /** PUBLISH packets whose remaining length (known from the first bytes) exceeds this are taken; the others pass through. */
  threshold: number;
  /** Bodies longer than this are not kept anywhere: dropped as they arrive, the stand-in says so. */
  maxBody: number;
  sink: BodySink<H>;
  /** Checked at each packet's start (the benchmark's A/B): false passes the packet through. */
  enabled?: () => boolean;
}

/** What a stand-in's payload says, read back by the link. */
export type StandIn<H> = { kind: 'streamed'; handle: H } | { kind: 'too-large'; length: number };

// A payload that starts with a NUL byte is never valid JSON: no real push can look like one.
const STREAMED = Buffer.from('\0e911-streamed:');
const TOO_LARGE = Buffer.from('\0e911-too-large:');
/** Longest a stand-in's payload can be: recognised by its length before its bytes are compared. */
const STAND_IN_MAX = TOO_LARGE.length + 16;
/** A variable header (topic, packet id, properties) longer than this is not held: the packet passes through. */
const MAX_VAR_HEADER = 64 * 1024 + 1024;
/** Stand-ins delivered but not taken yet (QoS 2 waits for PUBREL): more are duplicates mqtt.js dropped. */
const MAX_PENDING = 4;

type State =
  | { at: 'fixed' }
  | { at: 'pass'; left: number }
  | { at: 'var'; remaining: number }
  | { at: 'body'; left: number; stream: BodyStream<unknown> | null; length: number }
  | { at: 'broken' };

/**
 * The framing itself, without streams: `push(chunk)` returns what mqtt.js gets for it (the
 * socket's chunk itself when nothing in it is taken). Unit-tested at every byte boundary.
 */
export class PublishFramer<H> {
  private state: State = { at: 'fixed' };
  /** Bytes of a fixed header split across chunks (at most 5). */
  private fixed = Buffer.alloc(5);
  private fixedLen = 0;
  /** The held fixed header and variable header of a PUBLISH being looked at. */
  private held: Buffer[] = [];
  private heldLen = 0;
  /** How many of the held bytes are the fixed header. */
  private headLen = 0;
  private readonly topicBytes: Buffer;
  private nextStandIn = 1;
  /** Handles whose stand-in went to mqtt.js and was not taken yet (QoS 2 waits for PUBREL). */
  private readonly pending = new Map<number, H>();
  private readonly streams = new Set<BodyStream<H>>();

  constructor(private readonly opts: PublishFramerOptions<H>) {
    this.topicBytes = Buffer.from(opts.topic, 'utf8');
  }

  /** Whether framing gave up on this connection (a packet it could not read). */
  get broken(): boolean {
    return this.state.at === 'broken';
  }

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    // Where the bytes not yet given to mqtt.js start in this chunk (passed on as one slice).
    let from = 0;
    let i = 0;
    const n = chunk.length;
    const flush = (to: number) => {
      if (to > from) out.push(from === 0 && to === n ? chunk : chunk.subarray(from, to));
      from = to;
    };
    while (i < n) {
      const s = this.state;
      if (s.at === 'broken') {
        i = n;
      } else if (s.at === 'pass') {
        const take = Math.min(s.left, n - i);
        i += take;
        s.left -= take;
        if (s.left === 0) this.state = { at: 'fixed' };
      } else if (s.at === 'fixed') {
        // A fixed header: its bytes stay in the chunk (passed on as they are) unless it is a large PUBLISH.
        const start = i;
        const headerFrom = this.fixedLen;
        while (i < n && this.fixedLen < 5) {
          const b = chunk[i++]!;
          this.fixed[this.fixedLen++] = b;
          if (this.fixedLen >= 2 && (b & 0x80) === 0) break;
        }
        const last = this.fixed[this.fixedLen - 1]!;
        const complete = this.fixedLen >= 2 && (last & 0x80) === 0;
        if (!complete) {
          if (this.fixedLen === 5) {
            // A remaining length of more than four bytes: not MQTT. mqtt-packet says so.
            flush(start);
            if (headerFrom > 0) out.push(Buffer.from(this.fixed.subarray(0, headerFrom)));
            this.fixedLen = 0;
            this.state = { at: 'broken' };
            i = n;
            continue;
          }
          // Split across chunks: what was read stays in fixed[] and is not passed on yet.
          flush(start);
          from = n;
          continue;
        }
        const remaining = readVarint(this.fixed, 1);
        const isPublish = this.fixed[0]! >> 4 === 3;
        const wanted = isPublish && remaining > this.opts.threshold && (this.opts.enabled?.() ?? true);
        if (!wanted) {
          // Passed on: the part of the header from earlier chunks first, then this chunk's bytes.
          if (headerFrom > 0) {
            flush(start);
            out.push(Buffer.from(this.fixed.subarray(0, headerFrom)));
          }
          this.fixedLen = 0;
          this.state = remaining > 0 ? { at: 'pass', left: remaining } : { at: 'fixed' };
          continue;
        }
        // Held until the topic is read: the bytes before it go on now.
        flush(start);
        from = i;
        this.held = [Buffer.from(this.fixed.subarray(0, this.fixedLen))];
        this.heldLen = this.fixedLen;
        this.headLen = this.fixedLen;
        this.fixedLen = 0;
        this.state = { at: 'var', remaining };
      } else if (s.at === 'var') {
        // The variable header, held (copied: small) until it can be read whole.
        const headerLen = this.headLen;
        const need = this.varHeaderNeed(s.remaining);
        if (need === 'pass') {
          this.passHeld(out, s.remaining);
          from = i;
          continue;
        }
        const have = this.heldLen - headerLen;
        const take = Math.min(need - have, n - i);
        if (take > 0) {
          this.held.push(Buffer.from(chunk.subarray(i, i + take)));
          this.heldLen += take;
          i += take;
          from = i;
        }
        if (this.heldLen - headerLen < need) continue;
        const again = this.varHeaderNeed(s.remaining);
        if (again === 'pass') {
          this.passHeld(out, s.remaining);
          from = i;
          continue;
        }
        if (again > need) continue;
        // The whole variable header is held: ours, or passed on with its body.
        const held = Buffer.concat(this.held);
        this.held = [held];
        const varLen = held.length - headerLen;
        if (!this.isOurTopic(held, headerLen)) {
          this.passHeld(out, s.remaining);
          from = i;
          continue;
        }
        const length = s.remaining - varLen;
        let stream: BodyStream<H> | null = null;
        if (length <= this.opts.maxBody) {
          stream = this.opts.sink.open(length);
          this.streams.add(stream);
        }
        this.state = { at: 'body', left: length, stream: stream as BodyStream<unknown> | null, length };
        if (length === 0) this.endBody(out);
      } else {
        // A taken body: to the sink (or dropped when too large), never to mqtt.js.
        flush(i);
        const take = Math.min(s.left, n - i);
        if (take > 0) s.stream?.write(chunk.subarray(i, i + take));
        i += take;
        from = i;
        s.left -= take;
        if (s.left === 0) this.endBody(out);
      }
    }
    flush(n);
    return out;
  }

  /** The handle a stand-in's payload names, taken once; null when the payload is no stand-in of ours. */
  take(payload: Uint8Array): StandIn<H> | null {
    if (payload.length > STAND_IN_MAX || payload[0] !== 0) return null;
    const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    if (startsWith(b, STREAMED)) {
      const id = Number(b.subarray(STREAMED.length).toString('latin1'));
      const handle = this.pending.get(id);
      if (handle === undefined) return null;
      this.pending.delete(id);
      return { kind: 'streamed', handle };
    }
    if (startsWith(b, TOO_LARGE)) {
      const length = Number(b.subarray(TOO_LARGE.length).toString('latin1'));
      return Number.isSafeInteger(length) ? { kind: 'too-large', length } : null;
    }
    return null;
  }

  /** The connection is gone: bodies still arriving are aborted, handles never delivered discarded. */
  close(): void {
    for (const s of this.streams) s.abort();
    this.streams.clear();
    for (const h of this.pending.values()) this.opts.sink.discard(h);
    this.pending.clear();
    this.held = [];
    this.heldLen = 0;
    this.state = { at: 'broken' };
  }

  /** Bytes of variable header needed so far, or 'pass' when the packet is not one to take. */
  private varHeaderNeed(remaining: number): number | 'pass' {
    const need = this.varHeaderBound();
    // Never more than the packet holds (a malformed one passes through: mqtt-packet reports it).
    return need === 'pass' || need > remaining || need > MAX_VAR_HEADER ? 'pass' : need;
  }

  private varHeaderBound(): number | 'pass' {
    const headerLen = this.headLen;
    const qos = (this.held[0]![0]! >> 1) & 3;
    const have = this.heldLen - headerLen;
    if (qos === 3) return 'pass';
    if (have < 2) return 2;
    const v = this.heldVarHeader();
    const topicLen = (v[0]! << 8) | v[1]!;
    let need = 2 + topicLen + (qos > 0 ? 2 : 0);
    if (this.opts.protocolVersion === 5) {
      // The properties' length (a varint), then the properties.
      if (have < need + 1) return need + 1;
      let len = 0;
      let mul = 1;
      let k = need;
      for (;;) {
        if (k >= have) return k + 1;
        const b = v[k++]!;
        len += (b & 0x7f) * mul;
        if ((b & 0x80) === 0) break;
        mul *= 128;
        if (k - need >= 4) return 'pass';
      }
      need = k + len;
    }
    return need;
  }

  /** The held variable header bytes read so far, as one buffer (pieces joined: they are small). */
  private heldVarHeader(): Buffer {
    const all = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held);
    this.held = [all];
    return all.subarray(this.headLen);
  }

  private isOurTopic(held: Buffer, headerLen: number): boolean {
    const topicLen = (held[headerLen]! << 8) | held[headerLen + 1]!;
    if (topicLen !== this.topicBytes.length) return false;
    return held.subarray(headerLen + 2, headerLen + 2 + topicLen).equals(this.topicBytes);
  }

  /** The held bytes go to mqtt.js as they were; the rest of the packet passes through. */
  private passHeld(out: Buffer[], remaining: number): void {
    const varHave = this.heldLen - this.headLen;
    out.push(...this.held);
    this.held = [];
    this.heldLen = 0;
    const left = remaining - varHave;
    this.state = left > 0 ? { at: 'pass', left } : { at: 'fixed' };
  }

  /** The body has all arrived: mqtt.js gets the stand-in now, so it acks only a push the phone holds. */
  private endBody(out: Buffer[]): void {
    const s = this.state as Extract<State, { at: 'body' }>;
    let marker: Buffer;
    if (s.stream) {
      const stream = s.stream as BodyStream<H>;
      this.streams.delete(stream);
      const id = this.nextStandIn++;
      this.pending.set(id, stream.end());
      // A stand-in mqtt.js dropped (a QoS 2 duplicate) is never taken: only the newest few are kept.
      for (const [old, h] of this.pending) {
        if (this.pending.size <= MAX_PENDING) break;
        this.pending.delete(old);
        this.opts.sink.discard(h);
      }
      marker = Buffer.concat([STREAMED, Buffer.from(String(id), 'latin1')]);
    } else {
      marker = Buffer.concat([TOO_LARGE, Buffer.from(String(s.length), 'latin1')]);
    }
    const held = Buffer.concat(this.held);
    const first = held[0]!;
    const varHeader = held.subarray(this.headLen);
    const remaining = varHeader.length + marker.length;
    out.push(Buffer.concat([Buffer.from([first]), encodeVarint(remaining), varHeader, marker]));
    this.held = [];
    this.heldLen = 0;
    this.state = { at: 'fixed' };
  }
}

/** The framer as a stream stage: socket -> this -> mqtt.js's parser. */
export class PublishFramerStream<H> extends Transform {
  constructor(readonly framer: PublishFramer<H>) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    for (const b of this.framer.push(chunk)) this.push(b);
    done();
  }
}

function startsWith(b: Buffer, prefix: Buffer): boolean {
  return b.length >= prefix.length && b.subarray(0, prefix.length).equals(prefix);
}

function readVarint(b: Buffer, at: number): number {
  let value = 0;
  let mul = 1;
  for (let k = at; k < at + 4; k++) {
    value += (b[k]! & 0x7f) * mul;
    if ((b[k]! & 0x80) === 0) break;
    mul *= 128;
  }
  return value;
}

function encodeVarint(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    bytes.push(b);
  } while (n > 0);
  return Buffer.from(bytes);
}
