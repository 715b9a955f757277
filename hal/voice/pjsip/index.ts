// VoiceStack over pjsua-lib, through our node-addon-api binding (./src).
//
// Importing this module never throws: when the addon is not built (no
// pjproject on the build machine) or cannot load, pjsipAvailability() says
// "PJSIP addon not available: <reason>" so the agent can start and report
// that it cannot place calls.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { VoiceEventHub } from '../emitter.js';
import {
  normalizeTarget,
  transportOf,
  type AccountConfig,
  type AccountId,
  type AccountInfo,
  type CallId,
  type CallInfo,
  type DtmfMethod,
  type MakeCallOptions,
  type PlaybackId,
  type StartResult,
  type StopOptions,
  type VoiceEvents,
  type VoiceLogger,
  type VoiceStack,
  type VoiceStartOptions,
} from '../types.js';

const ADDON_FILE = 'e911_voice.node';

/** The addon's raw surface (see src/addon.cc). */
interface NativeVoice {
  start(options: Record<string, unknown>, emit: (e: NativeEvent) => void): StartResult;
  stop(options: { unregister: boolean }): Promise<void>;
  shutdownNow(): void;
  addAccount(config: AccountConfig): AccountId;
  setRegistration(account: AccountId, renew: boolean): void;
  removeAccount(account: AccountId): void;
  accountInfo(account: AccountId): AccountInfo;
  makeCall(account: AccountId, target: string, options: Record<string, unknown>): CallId;
  answer(call: CallId, code: number, reason?: string): void;
  hangup(call: CallId, code: number, reason?: string): void;
  hangupAll(): void;
  hold(call: CallId): void;
  unhold(call: CallId): void;
  sendDtmf(call: CallId, digits: string, method: DtmfMethod): void;
  callInfo(call: CallId): CallInfo;
  playFile(call: CallId, file: string, options: { loop: boolean }): PlaybackId;
  stopPlayback(playback: PlaybackId): void;
  version(): string;
  lastMakeCallTiming(): MakeCallTiming;
  mapShared(fd: number, size: number): ArrayBuffer;
  unmapShared(buffer: ArrayBuffer): void;
}

/** Where the last makeCall spent its time (the emergency benchmark's breakdown). */
export interface MakeCallTiming {
  /** Building pjsua's arguments (headers, body parts) from JS values. */
  prepareMs: number;
  /** pjsua_call_make_call itself: returns once the INVITE is handed to the transport. */
  pjsuaMs: number;
  /** CPU time the JS thread spent in pjsua_call_make_call: its cost, whatever the machine's load. */
  pjsuaCpuMs: number;
  /** Context switches of the JS thread meanwhile: voluntary = it waited (a lock, I/O); involuntary = the scheduler took the CPU away. */
  voluntarySwitches: number;
  involuntarySwitches: number;
  minorFaults: number;
}

type NativeEvent = { type: string; at: number } & Record<string, unknown>;

export type PjsipAvailability = { available: true; path: string; version: string } | { available: false; reason: string; message: string };

export interface PjsipOptions {
  /** Explicit path of e911_voice.node (e.g. handed in by a bundled executable). */
  addonPath?: string;
  logger?: VoiceLogger;
}

/** Where the built addon is looked for, relative to this module (source tree or dist/). */
export function defaultAddonPaths(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const paths = [path.join(here, 'build', 'Release', ADDON_FILE)];
  // Compiled to <root>/dist/hal/voice/pjsip/: the addon stays in the source tree.
  const distRoot = here.replace(/[\\/]dist[\\/]hal[\\/]voice[\\/]pjsip$/, '');
  if (distRoot !== here) paths.push(path.join(distRoot, 'hal', 'voice', 'pjsip', 'build', 'Release', ADDON_FILE));
  return paths;
}

type LoadResult = { ok: true; native: NativeVoice; path: string } | { ok: false; reason: string };

export function loadPjsipAddon(addonPath?: string): LoadResult {
  const candidates = addonPath ? [path.resolve(addonPath)] : defaultAddonPaths();
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) {
    return {
      ok: false,
      reason: `not built (no ${ADDON_FILE} at ${candidates.join(' or ')}; run "npm run build:voice" with pjproject installed)`,
    };
  }
  try {
    const require = createRequire(import.meta.url);
    return { ok: true, native: require(found) as NativeVoice, path: found };
  } catch (err) {
    return { ok: false, reason: `cannot load ${found}: ${(err as Error).message}` };
  }
}

export function pjsipAvailability(options: { addonPath?: string } = {}): PjsipAvailability {
  const r = loadPjsipAddon(options.addonPath);
  if (r.ok) return { available: true, path: r.path, version: r.native.version() };
  return { available: false, reason: r.reason, message: `PJSIP addon not available: ${r.reason}` };
}

/**
 * A file's first `size` bytes mapped MAP_SHARED (the addon's mmap): a store into the buffer is a
 * store into the page cache, kept when the process dies, with no syscall. The file must be at least
 * `size` long and not be truncated under the mapping (a store past its end is SIGBUS).
 */
export interface SharedFileMapper {
  /** Throws when the file cannot be mapped. */
  map(fd: number, size: number): ArrayBuffer;
  /** Removes the mapping now; the buffer is empty after. */
  unmap(buffer: ArrayBuffer): void;
}

/** The addon's file mapper; null when the addon is not built or cannot load (the caller writes with write(2)). */
export function sharedFileMapper(options: { addonPath?: string } = {}): SharedFileMapper | null {
  const r = loadPjsipAddon(options.addonPath);
  if (!r.ok || typeof r.native.mapShared !== 'function') return null;
  const native = r.native;
  return { map: (fd, size) => native.mapShared(fd, size), unmap: (buffer) => native.unmapShared(buffer) };
}

/** The PJSIP VoiceStack; throws "PJSIP addon not available: ..." when it cannot load. */
export function createPjsipVoiceStack(options: PjsipOptions = {}): PjsipVoiceStack {
  const r = loadPjsipAddon(options.addonPath);
  if (!r.ok) throw new Error(`PJSIP addon not available: ${r.reason}`);
  return new PjsipVoiceStack(r.native, options.logger);
}

const DEFAULT_INCOMING_HEADERS = ['From', 'To', 'Call-ID', 'Contact'];

const STAT_KEYS = ['rtpSent', 'rtpReceived', 'rtpLost', 'rtpLostByPeer', 'jitterMs', 'jitterMaxMs'] as const;

/** The addon sends a call's RTP figures as flat fields; the event carries them as `media`. */
function withMediaStats(e: Record<string, unknown>): Record<string, unknown> {
  if (typeof e.rtpSent !== 'number') return e;
  const out: Record<string, unknown> = { ...e };
  const media: Record<string, number> = {};
  for (const k of STAT_KEYS) {
    media[k] = Number(out[k] ?? 0);
    delete out[k];
  }
  out.media = media;
  return out;
}

export class PjsipVoiceStack implements VoiceStack {
  private readonly hub: VoiceEventHub;
  private readonly log: VoiceLogger | undefined;
  private readonly pjlog: VoiceLogger | undefined;
  private started: StartResult | undefined;
  private stopping: Promise<void> | undefined;
  // pjsua's threads must be gone before the process exits.
  private readonly onExit = (): void => this.native.shutdownNow();

  constructor(
    private readonly native: NativeVoice,
    logger?: VoiceLogger,
  ) {
    // Log on the logger given (the composition root names it); pjsip's own
    // lines are marked so they can be filtered.
    this.log = logger;
    this.pjlog = logger?.child({ src: 'pjsip' });
    this.hub = new VoiceEventHub(this.log);
  }

  get running(): boolean {
    return this.started !== undefined;
  }

  async start(options: VoiceStartOptions): Promise<StartResult> {
    if (this.stopping) await this.stopping;
    if (this.started) throw new Error('voice stack already started');
    const first = options.transports[0];
    const rtp = options.rtp ?? {};
    const native: Record<string, unknown> = {
      transports: options.transports,
      // RTP follows the SIP address unless told otherwise.
      rtpBoundAddress: rtp.boundAddress ?? first?.boundAddress,
      rtpPublicAddress: rtp.publicAddress ?? first?.publicAddress ?? rtp.boundAddress ?? first?.boundAddress,
      rtpPort: rtp.port,
      rtpPortRange: rtp.portRange,
      sound: options.sound ?? 'null',
      audioTest: options.audioTest,
      autoAnswer: options.autoAnswer ?? false,
      incomingHeaders: options.incomingHeaders ?? DEFAULT_INCOMING_HEADERS,
      userAgent: options.userAgent,
      maxCalls: options.maxCalls,
      transactionTimeoutMs: options.transactionTimeoutMs,
      largeRequestsOverTcp: options.largeRequestsOverTcp ?? false,
      logLevel: options.logLevel ?? 2,
      logSipMessages: options.logSipMessages ?? false,
    };
    const result = this.native.start(native, (e) => this.dispatch(e));
    this.started = result;
    process.on('exit', this.onExit);
    this.log?.info({ transports: result.transports, version: result.version }, 'voice stack started');
    return result;
  }

  stop(options: StopOptions = {}): Promise<void> {
    if (this.stopping) return this.stopping;
    if (!this.started) return Promise.resolve();
    this.started = undefined;
    this.stopping = this.native.stop({ unregister: options.unregister ?? true }).finally(() => {
      this.stopping = undefined;
      process.off('exit', this.onExit);
      this.log?.info({}, 'voice stack stopped');
    });
    return this.stopping;
  }

  addAccount(config: AccountConfig): AccountId {
    const id = this.native.addAccount(config);
    this.log?.info({ accountId: id, uri: config.uri, registrar: config.registrar }, 'account added');
    return id;
  }

  register(account: AccountId): void {
    this.native.setRegistration(account, true);
  }

  unregister(account: AccountId): void {
    this.native.setRegistration(account, false);
  }

  removeAccount(account: AccountId): void {
    this.native.removeAccount(account);
  }

  accountInfo(account: AccountId): AccountInfo {
    return this.native.accountInfo(account);
  }

  makeCall(target: string, options: MakeCallOptions = {}): CallId {
    const account = this.resolveAccount(options.account ?? 'local', target);
    const callId = this.native.makeCall(account, normalizeTarget(target), {
      headers: options.headers ?? [],
      parts: options.parts ?? [],
      from: options.from,
      requestUri: options.requestUri,
      audioAttributes: options.audioAttributes ?? [],
    });
    // Log after the INVITE is out: nothing may delay it.
    this.log?.info({ callId, target, account }, 'call placed');
    return callId;
  }

  answer(call: CallId, code = 200, reason?: string): void {
    this.native.answer(call, code, reason);
  }

  hangup(call: CallId, code = 0, reason?: string): void {
    this.native.hangup(call, code, reason);
  }

  hangupAll(): void {
    this.native.hangupAll();
  }

  hold(call: CallId): void {
    this.native.hold(call);
  }

  unhold(call: CallId): void {
    this.native.unhold(call);
  }

  sendDtmf(call: CallId, digits: string, method: DtmfMethod = 'rfc2833'): void {
    this.native.sendDtmf(call, digits, method);
  }

  callInfo(call: CallId): CallInfo {
    return this.native.callInfo(call);
  }

  playFile(call: CallId, file: string, options: { loop?: boolean } = {}): PlaybackId {
    return this.native.playFile(call, file, { loop: options.loop ?? false });
  }

  stopPlayback(playback: PlaybackId): void {
    this.native.stopPlayback(playback);
  }

  /** Where the last makeCall spent its time (for the emergency benchmark). */
  lastMakeCallTiming(): MakeCallTiming {
    return this.native.lastMakeCallTiming();
  }

  on<K extends keyof VoiceEvents>(event: K, listener: (e: VoiceEvents[K]) => void): () => void {
    return this.hub.on(event, listener);
  }

  private resolveAccount(account: AccountId | 'local', target: string): AccountId {
    if (account !== 'local') return account;
    const locals = this.started?.localAccounts;
    if (!locals) throw new Error('voice stack is not running');
    const id = locals[transportOf(target)] ?? Object.values(locals)[0];
    if (id === undefined) throw new Error('no local account');
    return id;
  }

  // Runs on the JS thread, called by the addon's ThreadSafeFunction.
  private dispatch(e: NativeEvent): void {
    const { type, ...rest } = e;
    switch (type) {
      case 'log':
        this.logPjsip(Number(rest.level), String(rest.message));
        return;
      case 'callState':
        this.hub.emit(type, withMediaStats(rest) as unknown as VoiceEvents['callState']);
        return;
      case 'registration':
      case 'incomingCall':
      case 'mediaState':
      case 'inviteResponse':
      case 'dtmf':
      case 'soundDevice':
      case 'playback':
        this.hub.emit(type, rest as unknown as VoiceEvents[typeof type]);
        return;
      default:
        this.log?.warn({ type }, 'unknown native voice event');
    }
  }

  private logPjsip(level: number, message: string): void {
    if (!this.pjlog) return;
    if (level <= 1) this.pjlog.error({ pjLevel: level }, message);
    else if (level === 2) this.pjlog.warn({ pjLevel: level }, message);
    else this.pjlog.debug({ pjLevel: level }, message);
  }
}
