// In-memory VoiceStack: a fake for unit tests of the logic that uses voice
// (emergency dialing, failover, callbacks). It records every call placed with
// its headers and body parts, and lets the test drive what the network would
// do: responses, state changes, incoming calls, DTMF, registrations.
// It is never the proof that a feature works: see the PJSIP integration tests.
// test/helpers/voice-contract.ts holds it to the PJSIP stack's behaviour (event
// order, failure codes, what callInfo answers); keep the two in step there.
// Over 400 lines: it fakes the whole VoiceStack interface, one method for each of its methods.
import { VoiceEventHub } from './emitter.js';
import {
  normalizeTarget,
  type AccountConfig,
  type AccountId,
  type AccountInfo,
  type CallId,
  type CallInfo,
  type CallMediaStats,
  type CallState,
  type DtmfMethod,
  type MakeCallOptions,
  type MediaStatus,
  type PlaybackId,
  type SipHeader,
  type StartResult,
  type TransportKind,
  type VoiceEvents,
  type VoiceStack,
  type VoiceStartOptions,
} from './types.js';

export interface MemoryCall {
  callId: CallId;
  role: 'caller' | 'callee';
  /** As written to the stack (after the `<urn:...>` fix). */
  target: string;
  account: AccountId | 'local';
  options: MakeCallOptions;
  sipCallId: string;
  state: CallState;
  lastStatusCode: number;
  lastStatusReason: string;
  mediaStatus: MediaStatus;
  held: boolean;
  dtmfSent: { digits: string; method: DtmfMethod }[];
  /** Codes answer() was called with (incoming calls). */
  answers: number[];
  hangupCode?: number;
  /** RTP figures its DISCONNECTED event carries (set by the test). */
  media?: CallMediaStats;
  /** Files played into the call (playFile), with whether each is still playing. */
  playbacks: MemoryPlayback[];
}

export interface MemoryPlayback {
  playbackId: PlaybackId;
  file: string;
  loop: boolean;
  plays: number;
  active: boolean;
}

/** Where an incoming call's packet came from (the real stack reads it off the socket). */
export interface MemorySource {
  address: string;
  port?: number;
  transport?: TransportKind;
  tlsVerified?: boolean;
}

export interface MemoryAccount {
  config: AccountConfig;
  registered: boolean;
  registerCalls: number;
  unregisterCalls: number;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

export class MemoryVoiceStack implements VoiceStack {
  readonly calls: MemoryCall[] = [];
  readonly accounts = new Map<AccountId, MemoryAccount>();
  startOptions: VoiceStartOptions | undefined;
  /** Make the next makeCall throw this (then clears), to test the caller's error path. */
  failNextCall: Error | undefined;
  /**
   * The network's registrar (test driver): hears every REGISTER this stack sends (renew
   * false: the unREGISTER), and may answer it with registration(). Like the real stack,
   * adding an account with a registrar sends the first REGISTER.
   */
  onRegister: ((account: AccountId, renew: boolean, config: AccountConfig) => void) | undefined;
  /** Sound devices that exist here: a configured name not in this list falls back to null at start. */
  soundDevices: string[] = ['default'];
  /** Why start fell back to the null device (while it still does), as the real stack words it. */
  private soundFallback: string | undefined;
  private readonly hub = new VoiceEventHub();
  private nextAccount = 10;
  private nextCall = 0;
  private nextPlayback = 0;
  private isRunning = false;

  get running(): boolean {
    return this.isRunning;
  }

  async start(options: VoiceStartOptions): Promise<StartResult> {
    if (this.isRunning) throw new Error('voice stack already started');
    this.startOptions = options;
    this.isRunning = true;
    const localAccounts: StartResult['localAccounts'] = {};
    const transports = options.transports.map((t, id) => {
      localAccounts[t.kind] ??= id;
      return { id, kind: t.kind, host: t.publicAddress ?? t.boundAddress ?? '127.0.0.1', port: t.port || 5060 + id };
    });
    const sound = options.sound ?? 'null';
    this.soundFallback = undefined;
    if (sound === 'null') return { transports, localAccounts, version: 'memory', sound: { device: 'null' } };
    this.soundFallback = this.selectSound(sound);
    return {
      transports,
      localAccounts,
      version: 'memory',
      sound: {
        device: this.soundFallback ? 'null' : 'configured',
        capture: sound.capture,
        playback: sound.playback,
        ...(this.soundFallback ? { fallbackReason: this.soundFallback } : {}),
      },
    };
  }

  /** Why these devices cannot be used (the real stack's words), or undefined. */
  private selectSound(sound: { capture: string; playback: string }): string | undefined {
    const why = [
      ...(this.soundDevices.includes(sound.capture) ? [] : [`no capture device named "${sound.capture}"`]),
      ...(this.soundDevices.includes(sound.playback) ? [] : [`no playback device named "${sound.playback}"`]),
    ];
    return why.length ? `${why.join('; ')} (devices: ${this.soundDevices.join(', ') || 'none'})` : undefined;
  }

  async stop(): Promise<void> {
    if (!this.isRunning) return;
    for (const c of this.calls) if (c.state !== 'DISCONNECTED') this.setCallState(c.callId, 'DISCONNECTED');
    this.isRunning = false;
  }

  addAccount(config: AccountConfig): AccountId {
    this.requireRunning();
    const id = this.nextAccount++;
    this.accounts.set(id, { config, registered: false, registerCalls: 0, unregisterCalls: 0 });
    if (config.registrar !== undefined && config.register !== false) this.register(id);
    return id;
  }

  register(account: AccountId): void {
    const a = this.account(account);
    a.registerCalls++;
    const hook = this.onRegister;
    if (hook) queueMicrotask(() => hook(account, true, a.config));
  }

  unregister(account: AccountId): void {
    const a = this.account(account);
    a.unregisterCalls++;
    const hook = this.onRegister;
    if (hook) queueMicrotask(() => hook(account, false, a.config));
  }

  removeAccount(account: AccountId): void {
    this.account(account);
    this.accounts.delete(account);
  }

  accountInfo(account: AccountId): AccountInfo {
    const a = this.account(account);
    return {
      accountId: account,
      uri: a.config.uri,
      isDefault: a.config.isDefault ?? false,
      hasRegistration: a.config.registrar !== undefined,
      registered: a.registered,
      statusCode: a.registered ? 200 : 0,
      statusText: a.registered ? 'OK' : '',
      expires: a.registered ? 300 : 0,
    };
  }

  makeCall(target: string, options: MakeCallOptions = {}): CallId {
    this.requireRunning();
    if (this.failNextCall) {
      const err = this.failNextCall;
      this.failNextCall = undefined;
      throw err;
    }
    const account = options.account ?? 'local';
    if (account !== 'local') this.account(account);
    const call = this.newCall('caller', normalizeTarget(target), account, options);
    // Like the real stack: the call is CALLING at once, its event comes after makeCall has returned.
    call.state = 'CALLING';
    queueMicrotask(() => this.setCallState(call.callId, 'CALLING'));
    return call.callId;
  }

  // Like the real stack, what answer, hangup, hold and unhold cause is reported after they
  // return, never inside them (a microtask later: `await` anything, and it has happened).

  answer(call: CallId, code = 200): void {
    const c = this.call(call);
    c.answers.push(code);
    queueMicrotask(() => {
      if (c.state === 'DISCONNECTED') return;
      if (code >= 300) this.setCallState(call, 'DISCONNECTED', code);
      else if (code >= 200) {
        this.setCallState(call, 'CONFIRMED', code);
        this.setMedia(call, 'active');
      } else this.setCallState(call, 'EARLY', code);
    });
  }

  hangup(call: CallId, code = 0): void {
    const c = this.call(call);
    c.hangupCode = code;
    queueMicrotask(() => {
      if (c.state !== 'DISCONNECTED') this.setCallState(call, 'DISCONNECTED', c.state === 'CONFIRMED' ? 200 : 487);
    });
  }

  hangupAll(): void {
    for (const c of this.calls) if (c.state !== 'DISCONNECTED') this.hangup(c.callId);
  }

  hold(call: CallId): void {
    this.call(call).held = true;
    queueMicrotask(() => this.setMedia(call, 'localHold'));
  }

  unhold(call: CallId): void {
    this.call(call).held = false;
    queueMicrotask(() => this.setMedia(call, 'active'));
  }

  sendDtmf(call: CallId, digits: string, method: DtmfMethod = 'rfc2833'): void {
    this.call(call).dtmfSent.push({ digits, method });
  }

  playFile(call: CallId, file: string, options: { loop?: boolean } = {}): PlaybackId {
    const c = this.call(call);
    if (c.mediaStatus !== 'active') throw new Error(`call ${call} has no active media`);
    const p: MemoryPlayback = { playbackId: this.nextPlayback++, file, loop: options.loop ?? false, plays: 0, active: true };
    c.playbacks.push(p);
    return p.playbackId;
  }

  stopPlayback(playback: PlaybackId): void {
    for (const c of this.calls) for (const p of c.playbacks) if (p.playbackId === playback) p.active = false;
  }

  callInfo(call: CallId): CallInfo {
    const c = this.call(call);
    // pjsua forgets an ended call (PJSIP_ESESSIONTERMINATED): so does this. Tests read `calls`.
    if (c.state === 'DISCONNECTED') throw new Error(`call ${call} has ended`);
    return {
      callId: c.callId,
      accountId: typeof c.account === 'number' ? c.account : -1,
      role: c.role,
      state: c.state,
      lastStatusCode: c.lastStatusCode,
      lastStatusReason: c.lastStatusReason,
      sipCallId: c.sipCallId,
      localUri: 'sip:memory@127.0.0.1',
      remoteUri: c.target,
      mediaStatus: c.mediaStatus,
      connectDurationMs: 0,
    };
  }

  on<K extends keyof VoiceEvents>(event: K, listener: (e: VoiceEvents[K]) => void): () => void {
    return this.hub.on(event, listener);
  }

  // ---- test drivers: what the network would do ----------------------------

  /**
   * The network answered the INVITE, in the real stack's order: a provisional response's
   * inviteResponse, then EARLY (not for 100); a 2xx's CONNECTING, media, CONFIRMED, then
   * its inviteResponse; a final failure only as DISCONNECTED (pjsua reports no
   * inviteResponse for it).
   */
  respond(call: CallId, code: number, reason = defaultReason(code)): void {
    const c = this.call(call);
    const response = () => this.hub.emit('inviteResponse', { at: now(), callId: call, code, reason, cseq: 1, sipCallId: c.sipCallId });
    if (code >= 200 && code < 300) {
      this.setCallState(call, 'CONNECTING', code, reason);
      this.setMedia(call, 'active');
      this.setCallState(call, 'CONFIRMED', code, reason);
      response();
    } else if (code >= 300) this.setCallState(call, 'DISCONNECTED', code, reason);
    else {
      response();
      if (code > 100) this.setCallState(call, 'EARLY', code, reason);
    }
  }

  /** The far end hung up (BYE): DISCONNECTED with 200, as pjsua reports it. */
  remoteHangup(call: CallId): void {
    this.setCallState(call, 'DISCONNECTED', 200);
  }

  /** Drive the call state directly (e.g. a transport error: 'DISCONNECTED', 503, ..., true). */
  setCallState(call: CallId, state: CallState, code?: number, reason?: string, transportError?: boolean): void {
    const c = this.call(call);
    c.state = state;
    // Like the addon: a call's playbacks end with it.
    if (state === 'DISCONNECTED') for (const p of c.playbacks) p.active = false;
    if (code !== undefined) {
      c.lastStatusCode = code;
      c.lastStatusReason = reason ?? defaultReason(code);
    }
    this.hub.emit('callState', {
      at: now(),
      callId: call,
      accountId: typeof c.account === 'number' ? c.account : -1,
      state,
      lastStatusCode: c.lastStatusCode,
      lastStatusReason: c.lastStatusReason,
      sipCallId: c.sipCallId,
      remoteUri: c.target,
      role: c.role,
      ...(transportError !== undefined ? { transportError } : {}),
      ...(state === 'DISCONNECTED' && c.media ? { media: c.media } : {}),
    });
  }

  setMedia(call: CallId, status: MediaStatus): void {
    const c = this.call(call);
    const connects = status === 'active' && c.mediaStatus === 'none';
    c.mediaStatus = status;
    // Like the real stack, a call's audio connecting retries a device that failed before (only
    // when it is the only call: switching under another call would cut it) and says how it went.
    const sound = this.startOptions?.sound;
    if (connects && this.soundFallback && sound && sound !== 'null' && this.calls.filter((x) => x.state !== 'DISCONNECTED').length <= 1) {
      this.soundFallback = this.selectSound(sound);
      this.hub.emit('soundDevice', {
        at: now(),
        ok: !this.soundFallback,
        phase: 'call',
        ...sound,
        ...(this.soundFallback ? { reason: this.soundFallback } : {}),
        callId: call,
      });
    }
    this.hub.emit('mediaState', { at: now(), callId: call, status });
  }

  /** A call arrives; auto-answered when started with autoAnswer. */
  incomingCall(remoteUri: string, headers: SipHeader[] = [], source?: MemorySource): CallId {
    this.requireRunning();
    const c = this.newCall('callee', remoteUri, 'local', {});
    c.state = 'INCOMING';
    const autoAnswered = this.startOptions?.autoAnswer ?? false;
    // Like the real stack: the headers named at start, as the request carried them (the test's, or these).
    const own: Record<string, string> = {
      from: `${remoteUri};tag=memory-${c.callId}`,
      to: '<sip:memory@127.0.0.1>',
      'call-id': c.sipCallId,
      contact: /<[^>]+>/.exec(remoteUri)?.[0] ?? `<${remoteUri}>`,
    };
    const copied = (this.startOptions?.incomingHeaders ?? ['From', 'To', 'Call-ID', 'Contact']).flatMap((name): SipHeader[] => {
      const given = headers.find((h) => h.name.toLowerCase() === name.toLowerCase());
      if (given) return [{ name, value: given.value }];
      const value = own[name.toLowerCase()];
      return value !== undefined ? [{ name, value }] : [];
    });
    this.hub.emit('incomingCall', {
      at: now(),
      callId: c.callId,
      accountId: -1,
      remoteUri,
      localUri: 'sip:memory@127.0.0.1',
      sipCallId: c.sipCallId,
      headers: copied,
      autoAnswered,
      ...(source
        ? {
            sourceAddress: source.address,
            sourcePort: source.port ?? 5060,
            transport: source.transport ?? 'udp',
            tlsVerified: source.tlsVerified ?? false,
          }
        : {}),
    });
    if (autoAnswered) this.answer(c.callId, 200);
    return c.callId;
  }

  /** The sound device failed (or works again) when a call needed it. */
  soundDevice(ok: boolean, reason?: string, callId?: CallId): void {
    const sound = this.startOptions?.sound;
    const names = sound && sound !== 'null' ? sound : { capture: 'null', playback: 'null' };
    this.hub.emit('soundDevice', {
      at: now(),
      ok,
      phase: 'call',
      ...names,
      ...(reason ? { reason } : {}),
      ...(callId !== undefined ? { callId } : {}),
    });
  }

  /** A playback reached the end of its file once more (test driver). */
  playedThrough(playback: PlaybackId): void {
    const c = this.calls.find((x) => x.playbacks.some((p) => p.playbackId === playback));
    const p = c?.playbacks.find((x) => x.playbackId === playback);
    if (!c || !p?.active) throw new Error(`no playback ${playback}`);
    p.plays++;
    if (!p.loop) p.active = false;
    this.hub.emit('playback', { at: now(), playbackId: playback, callId: c.callId, plays: p.plays });
  }

  dtmfIn(call: CallId, digit: string, method: DtmfMethod = 'rfc2833'): void {
    this.call(call);
    this.hub.emit('dtmf', { at: now(), callId: call, digit, method });
  }

  /** The registrar answered a REGISTER (or unREGISTER when renew is false). */
  registration(account: AccountId, code: number, renew = true, expires = renew && code < 300 ? 300 : 0): void {
    const a = this.account(account);
    a.registered = renew && code >= 200 && code < 300 && expires > 0;
    this.hub.emit('registration', {
      at: now(),
      accountId: account,
      code,
      reason: defaultReason(code),
      expires,
      renew,
      registered: a.registered,
    });
  }

  private newCall(role: 'caller' | 'callee', target: string, account: AccountId | 'local', options: MakeCallOptions): MemoryCall {
    const c: MemoryCall = {
      callId: this.nextCall++,
      role,
      target,
      account,
      options,
      sipCallId: `memory-${Date.now()}-${this.nextCall}`,
      state: 'NULL',
      lastStatusCode: 0,
      lastStatusReason: '',
      mediaStatus: 'none',
      held: false,
      dtmfSent: [],
      answers: [],
      playbacks: [],
    };
    this.calls.push(c);
    return c;
  }

  private requireRunning(): void {
    if (!this.isRunning) throw new Error('voice stack is not running');
  }

  private call(id: CallId): MemoryCall {
    const c = this.calls.find((x) => x.callId === id);
    if (!c) throw new Error(`no call ${id}`);
    return c;
  }

  private account(id: AccountId): MemoryAccount {
    const a = this.accounts.get(id);
    if (!a) throw new Error(`no account ${id}`);
    return a;
  }
}

function defaultReason(code: number): string {
  const reasons: Record<number, string> = {
    100: 'Trying',
    180: 'Ringing',
    183: 'Session Progress',
    200: 'OK',
    408: 'Request Timeout',
    424: 'Bad Location Information',
    486: 'Busy Here',
    487: 'Request Terminated',
    503: 'Service Unavailable',
  };
  return reasons[code] ?? '';
}
