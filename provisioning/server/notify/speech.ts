// The spoken message of a security-desk call, made by Debian's espeak-ng and
// kept as a 16 kHz mono 16-bit WAV (the voice stack's clock rate: pjmedia then
// plays it without resampling on its media thread). espeak-ng writes 22050 Hz;
// resampleWav converts. The message is spoken with a voice of the site's
// language (voiceCandidates), and its text is kept beside the WAV (<key>.txt,
// what espeak-ng read) so an operator can see what the desk heard.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export class SpeechError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SpeechError';
  }
}

export interface SpeechOptions {
  /** Folder for the WAV files (created when missing); one file per distinct text. */
  dir: string;
  /** The synthesizer executable (default espeak-ng, from PATH). */
  command?: string;
  /** espeak-ng voice of English messages (default en-us) and speed in words per minute (default 145). */
  voice?: string;
  wordsPerMinute?: number;
  /** The rate the file is written at (default 16000). */
  sampleRate?: number;
}

export interface Speech {
  /**
   * The WAV file speaking `text` (made once per text and voice, then reused) and its length
   * in ms, with a voice for `language` (a tag such as es-US; default en).
   */
  file(text: string, language?: string): Promise<{ path: string; durationMs: number }>;
}

const TIMEOUT_MS = 20_000;

/**
 * The espeak-ng voices that speak a language tag, best first: Latin American Spanish for the
 * Americas (es-419; es-la in older espeak-ng), Spain's for es-ES; France's French unless the
 * tag names Belgium or Switzerland (espeak-ng has no Canadian French). Other languages are
 * spoken by `english`: the notice itself is then in English.
 */
export function voiceCandidates(tag: string, english: string): string[] {
  const [primary, ...rest] = tag.toLowerCase().split('-');
  const region = rest.find((p) => /^([a-z]{2}|[0-9]{3})$/.test(p));
  if (primary === 'es') return region === 'es' ? ['es'] : ['es-419', 'es-la', 'es'];
  if (primary === 'fr') return region === 'be' || region === 'ch' ? [`fr-${region}`, 'fr-fr', 'fr'] : ['fr-fr', 'fr'];
  return [english];
}

/** The language names of `espeak-ng --voices` output, without MBROLA voices (their data is a separate package). */
export function parseVoiceList(out: string): Set<string> {
  const names = new Set<string>();
  for (const line of out.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 5 && !cols[4]!.startsWith('mb/')) names.add(cols[1]!.toLowerCase());
  }
  return names;
}

export class EspeakSpeech implements Speech {
  private readonly made = new Map<string, Promise<{ path: string; durationMs: number }>>();
  private installed: Promise<Set<string> | null> | null = null;

  constructor(private readonly opts: SpeechOptions) {}

  async file(text: string, language = 'en'): Promise<{ path: string; durationMs: number }> {
    const rate = this.opts.sampleRate ?? 16000;
    const voice = await this.voiceFor(language);
    const wpm = this.opts.wordsPerMinute ?? 145;
    const key = createHash('sha256').update(`${voice}\n${wpm}\n${rate}\n${text}`).digest('hex').slice(0, 32);
    let p = this.made.get(key);
    if (!p) {
      p = this.make(text, key, voice, wpm, rate);
      // A failure is not kept: the next attempt tries again.
      p.catch(() => this.made.delete(key));
      this.made.set(key, p);
      if (this.made.size > 200) this.made.delete(this.made.keys().next().value!);
    }
    return p;
  }

  /** The first candidate voice this espeak-ng has; the last one (the bare language) when it cannot say. */
  private async voiceFor(language: string): Promise<string> {
    const candidates = voiceCandidates(language, this.opts.voice ?? 'en-us');
    if (candidates.length === 1) return candidates[0]!;
    if (!this.installed) {
      const command = this.opts.command ?? 'espeak-ng';
      this.installed = new Promise((resolve) => {
        execFile(command, ['--voices'], { timeout: TIMEOUT_MS }, (err, stdout) => resolve(err ? null : parseVoiceList(stdout)));
      });
    }
    const installed = await this.installed;
    return candidates.find((v) => installed?.has(v)) ?? candidates.at(-1)!;
  }

  private async make(text: string, key: string, voice: string, wpm: number, rate: number): Promise<{ path: string; durationMs: number }> {
    await fs.mkdir(this.opts.dir, { recursive: true });
    const out = path.join(this.opts.dir, `${key}.wav`);
    const raw = path.join(this.opts.dir, `${key}.espeak.wav`);
    const words = path.join(this.opts.dir, `${key}.txt`);
    const command = this.opts.command ?? 'espeak-ng';
    await fs.writeFile(words, text);
    await new Promise<void>((resolve, reject) => {
      // The text from its file, read as UTF-8 (-b 1): accents whatever the locale, never parsed as options.
      execFile(
        command,
        ['-v', voice, '-s', String(wpm), '-b', '1', '-f', words, '-w', raw],
        { timeout: TIMEOUT_MS },
        (err, _stdout, stderr) => {
          if (err) reject(new SpeechError(`${command} failed: ${stderr.trim() || err.message}`, { cause: err }));
          else resolve();
        },
      );
    });
    const wav = resampleWav(await fs.readFile(raw), rate);
    await fs.writeFile(out, wav.bytes);
    await fs.rm(raw, { force: true });
    return { path: out, durationMs: wav.durationMs };
  }
}

interface Pcm {
  rate: number;
  samples: Int16Array;
}

/** The PCM of a 16-bit mono WAV (espeak-ng's output). */
export function readWav(buf: Buffer): Pcm {
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new SpeechError('not a WAV file');
  let off = 12;
  let rate = 0;
  let data: Buffer | null = null;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    // espeak-ng writing to a file leaves the sizes right; to a pipe they would be 0x7fffffff.
    const size = Math.min(buf.readUInt32LE(off + 4), buf.length - off - 8);
    if (id === 'fmt ') {
      const format = buf.readUInt16LE(off + 8);
      const channels = buf.readUInt16LE(off + 10);
      rate = buf.readUInt32LE(off + 12);
      const bits = buf.readUInt16LE(off + 22);
      if (format !== 1 || channels !== 1 || bits !== 16)
        throw new SpeechError(`WAV is not 16-bit PCM mono (format ${format}, ${channels} ch, ${bits} bit)`);
    } else if (id === 'data') {
      data = buf.subarray(off + 8, off + 8 + size);
    }
    off += 8 + size + (size % 2);
  }
  if (!rate || !data) throw new SpeechError('WAV without fmt or data');
  const samples = new Int16Array(data.length >> 1);
  for (let i = 0; i < samples.length; i++) samples[i] = data.readInt16LE(i * 2);
  return { rate, samples };
}

export function writeWav(pcm: Pcm): Buffer {
  const data = pcm.samples.length * 2;
  const b = Buffer.alloc(44 + data);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + data, 4);
  b.write('WAVEfmt ', 8, 'ascii');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(pcm.rate, 24);
  b.writeUInt32LE(pcm.rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(data, 40);
  for (let i = 0; i < pcm.samples.length; i++) b.writeInt16LE(pcm.samples[i]!, 44 + i * 2);
  return b;
}

/**
 * The WAV at `rate`: a windowed-sinc low-pass at the lower Nyquist frequency, then
 * interpolation at the new sample times (speech only: quality over speed is not needed,
 * a 15 s message takes a few ms).
 */
export function resampleWav(buf: Buffer, rate: number): { bytes: Buffer; durationMs: number } {
  const src = readWav(buf);
  const out = src.rate === rate ? src.samples : resample(src.samples, src.rate, rate);
  return { bytes: writeWav({ rate, samples: out }), durationMs: Math.round((out.length * 1000) / rate) };
}

function resample(x: Int16Array, from: number, to: number): Int16Array {
  const n = Math.floor((x.length * to) / from);
  const y = new Int16Array(n);
  const cutoff = Math.min(1, to / from) * 0.95; // of the source Nyquist
  const half = 16; // taps each side
  for (let i = 0; i < n; i++) {
    const t = (i * from) / to;
    const c = Math.floor(t);
    let acc = 0;
    let norm = 0;
    for (let k = c - half + 1; k <= c + half; k++) {
      if (k < 0 || k >= x.length) continue;
      const d = t - k;
      const sinc = d === 0 ? 1 : Math.sin(Math.PI * cutoff * d) / (Math.PI * cutoff * d);
      const w = 0.5 + 0.5 * Math.cos((Math.PI * d) / half); // Hann window
      const h = sinc * w;
      acc += x[k]! * h;
      norm += h;
    }
    y[i] = Math.max(-32768, Math.min(32767, Math.round(norm ? acc / norm : 0)));
  }
  return y;
}
