// Audio for the voice tests: tones, G.711 mu-law, an RTP capture file that
// SIPp's play_pcap_audio replays, WAV reading, and a Goertzel tone detector.
// Pure Node: no sox, no tshark.
import { readFileSync, writeFileSync } from 'node:fs';

/** A sine tone, 16-bit samples. */
export function tone(hz: number, ms: number, rate = 8000, amplitude = 8000): Int16Array {
  const n = Math.round((rate * ms) / 1000);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / rate));
  return out;
}

/** ITU-T G.711 mu-law encoding of one 16-bit sample. */
export function linearToUlaw(sample: number): number {
  const BIAS = 0x84;
  const CLIP = 32635;
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function ipv4(addr: string): Buffer {
  return Buffer.from(addr.split('.').map(Number));
}

function ipChecksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += header.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

/**
 * Writes a libpcap file (Ethernet) of RTP packets carrying `samples` as
 * PCMU (payload type 0), 20 ms per packet, 20 ms apart. SIPp replays the
 * packets' UDP payloads with their timing, from its media port to the
 * address the other side's SDP gave; the addresses written here only set
 * the port base.
 */
export function writeRtpPcap(file: string, samples: Int16Array, o: { ssrc?: number; srcPort?: number; dstPort?: number } = {}): number {
  const perPacket = 160;
  const ssrc = o.ssrc ?? 0x5eed911;
  const rtps: Buffer[] = [];
  for (let off = 0, seq = 1; off + perPacket <= samples.length; off += perPacket, seq++) {
    const rtp = Buffer.alloc(12 + perPacket);
    rtp[0] = 0x80;
    rtp[1] = seq === 1 ? 0x80 : 0x00; // marker on the first packet, payload type 0 (PCMU)
    rtp.writeUInt16BE(seq & 0xffff, 2);
    rtp.writeUInt32BE(off >>> 0, 4);
    rtp.writeUInt32BE(ssrc >>> 0, 8);
    for (let i = 0; i < perPacket; i++) rtp[12 + i] = linearToUlaw(samples[off + i]!);
    rtps.push(rtp);
  }
  writePcap(file, rtps, o);
  return rtps.length;
}

/**
 * A pcap SIPp plays (play_pcap_audio) to press a key: `leadMs` of PCMU silence, then the
 * digit as RFC 4733 telephone-event packets (payload type `pt`, as the caller's offer maps
 * telephone-event/8000), every 20 ms for `toneMs`, the last three with the end bit.
 */
export function writeDtmfPcap(file: string, o: { digit: string; pt: number; leadMs?: number; toneMs?: number }): number {
  const events = '0123456789*#ABCD';
  const event = events.indexOf(o.digit.toUpperCase());
  if (event < 0) throw new Error(`not a DTMF digit: ${o.digit}`);
  const rtp: Buffer[] = [];
  let seq = 1;
  let ts = 0;
  const header = (pt: number, marker: boolean, stamp: number) => {
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = (marker ? 0x80 : 0) | pt;
    h.writeUInt16BE(seq++ & 0xffff, 2);
    h.writeUInt32BE(stamp >>> 0, 4);
    h.writeUInt32BE(0x0de5c911, 8);
    return h;
  };
  for (let i = 0; i < (o.leadMs ?? 500) / 20; i++, ts += 160) rtp.push(Buffer.concat([header(0, i === 0, ts), Buffer.alloc(160, 0xff)]));
  const steps = Math.max(1, Math.round((o.toneMs ?? 200) / 20));
  for (let i = 1; i <= steps + 2; i++) {
    const end = i > steps;
    const payload = Buffer.alloc(4);
    payload[0] = event;
    payload[1] = (end ? 0x80 : 0) | 10; // end bit, volume -10 dBm0
    payload.writeUInt16BE(Math.min(i, steps) * 160, 2);
    rtp.push(Buffer.concat([header(o.pt, i === 1, ts), payload]));
  }
  writePcap(file, rtp);
  return rtp.length;
}

/** A libpcap file (Ethernet) of RTP packets over UDP on loopback, 20 ms apart. */
function writePcap(file: string, rtps: Buffer[], o: { srcPort?: number; dstPort?: number } = {}): void {
  const global = Buffer.alloc(24);
  global.writeUInt32LE(0xa1b2c3d4, 0);
  global.writeUInt16LE(2, 4);
  global.writeUInt16LE(4, 6);
  global.writeUInt32LE(65535, 16); // snaplen
  global.writeUInt32LE(1, 20); // DLT_EN10MB
  const chunks = [global];
  rtps.forEach((rtp, n) => {
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(o.srcPort ?? 40000, 0);
    udp.writeUInt16BE(o.dstPort ?? 50000, 2);
    udp.writeUInt16BE(8 + rtp.length, 4);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 8 + rtp.length, 2);
    ip[8] = 64;
    ip[9] = 17;
    ipv4('127.0.0.1').copy(ip, 12);
    ipv4('127.0.0.1').copy(ip, 16);
    ip.writeUInt16BE(ipChecksum(ip), 10);
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(0x0800, 12);
    const frame = Buffer.concat([eth, ip, udp, rtp]);
    const rec = Buffer.alloc(16);
    const usec = n * 20_000;
    rec.writeUInt32LE(Math.floor(usec / 1e6), 0);
    rec.writeUInt32LE(usec % 1e6, 4);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    chunks.push(rec, frame);
  });
  writeFileSync(file, Buffer.concat(chunks));
}

/** A 16-bit PCM mono WAV file: its sample rate and samples. */
export function readWav(file: string): { rate: number; samples: Int16Array } {
  const buf = readFileSync(file);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error(`${file} is not a WAV file`);
  let rate = 0;
  for (let off = 12; off + 8 <= buf.length; ) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') {
      if (buf.readUInt16LE(off + 8) !== 1 || buf.readUInt16LE(off + 10) !== 1 || buf.readUInt16LE(off + 22) !== 16)
        throw new Error(`${file}: not 16-bit PCM mono`);
      rate = buf.readUInt32LE(off + 12);
    } else if (id === 'data') {
      const end = Math.min(buf.length, off + 8 + size);
      const samples = new Int16Array(Math.floor((end - off - 8) / 2));
      for (let i = 0; i < samples.length; i++) samples[i] = buf.readInt16LE(off + 8 + 2 * i);
      return { rate, samples };
    }
    off += 8 + size + (size % 2);
  }
  throw new Error(`${file}: no data chunk`);
}

/**
 * Waits until pjmedia has closed a WAV it was writing (its RIFF size then
 * matches the file): the conference bridge lets go of a recorder on its own
 * thread, just after the call that fed it has ended.
 */
export async function closedWav(file: string, timeoutMs = 3000): Promise<{ rate: number; samples: Int16Array }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const buf = readFileSync(file);
    if (buf.length >= 44 && buf.readUInt32LE(4) === buf.length - 8) return readWav(file);
    if (Date.now() > end) throw new Error(`${file} was not closed within ${timeoutMs} ms (${buf.length} bytes)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Share of a block's energy at `hz` (0..1), by the Goertzel algorithm. */
export function toneShare(samples: Int16Array, start: number, n: number, rate: number, hz: number): number {
  const k = Math.round((n * hz) / rate);
  const coeff = 2 * Math.cos((2 * Math.PI * k) / n);
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (let i = start; i < start + n; i++) {
    const x = samples[i]!;
    energy += x * x;
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  if (energy === 0) return 0;
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  // A pure tone on the bin puts (n/2) * energy into `power`.
  return power / ((n / 2) * energy);
}

/** For each 20 ms block: which of the tones (if any) carries most of its energy. */
export function toneBlocks(wav: { rate: number; samples: Int16Array }, tones: number[], minShare = 0.6): (number | null)[] {
  const n = Math.round(wav.rate / 50);
  const out: (number | null)[] = [];
  for (let start = 0; start + n <= wav.samples.length; start += n) {
    let hit: number | null = null;
    for (const hz of tones) if (toneShare(wav.samples, start, n, wav.rate, hz) >= minShare) hit = hz;
    out.push(hit);
  }
  return out;
}
