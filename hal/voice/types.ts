// The VoiceStack HAL: what the agent needs from a SIP user agent to place
// (emergency) calls. Backends: ./pjsip (real, pjsua-lib) and ./memory (fake
// for unit tests of logic elsewhere).
//
// Ids are small integers owned by the backend; a call id is reused once its
// call has ended (DISCONNECTED), so correlate old events by sipCallId. Events
// arrive asynchronously (never inside the call that caused them) and in the
// order the stack reported them: note that a 2xx's inviteResponse comes just
// after the CONFIRMED callState it causes.
// Every event carries `at`: milliseconds on the monotonic clock of
// process.hrtime(), taken when the stack saw it, so latencies can be measured
// without counting the hop to the JS thread:
//   const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

export type AccountId = number;
export type CallId = number;
export type PlaybackId = number;
export type TransportKind = 'udp' | 'tcp' | 'tls';

/** A pino-compatible logger, typed structurally so any such logger fits. */
export interface VoiceLogger {
  child(bindings: Record<string, unknown>): VoiceLogger;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface TransportConfig {
  kind: TransportKind;
  /** Local port; 0 picks a free one (read it back from StartResult). */
  port?: number;
  /** Address to bind the SIP socket to (default: all). */
  boundAddress?: string;
  /** Address advertised in Via/Contact (default: the bound or first address). */
  publicAddress?: string;
  tls?: {
    caListFile?: string;
    certFile?: string;
    privateKeyFile?: string;
    password?: string;
    /** Verify the server certificate (default true). */
    verifyServer?: boolean;
  };
}

export interface VoiceStartOptions {
  /** At least one. A local (registrar-less) account is created for each. */
  transports: TransportConfig[];
  /** RTP is bound to this address too (else the SDP shows the first interface). */
  rtp?: { port?: number; portRange?: number; boundAddress?: string; publicAddress?: string };
  /**
   * The sound device: ALSA capture and playback device names, or 'null'
   * (default here; headless tests and the demo only). A device that is
   * missing or busy never stops a call: the null device stands in, and
   * StartResult.sound / the soundDevice event say why.
   */
  sound?: 'null' | SoundDevices;
  /**
   * Audio test mode (tests only): every call sends this tone (on/off,
   * looping) instead of the microphone, and what it receives is recorded to
   * <recordDir>/<Call-ID>.wav (CallStateEvent.recording on DISCONNECTED).
   */
  audioTest?: { toneHz: number; toneOnMs?: number; toneOffMs?: number; recordDir?: string };
  /** Answer every incoming call with 200 at once (e.g. a PSAP callback). */
  autoAnswer?: boolean;
  /** Request headers copied into IncomingCallEvent.headers (default From, To, Call-ID, Contact). */
  incomingHeaders?: string[];
  userAgent?: string;
  maxCalls?: number;
  /**
   * How long a SIP transaction waits for a final response before it ends
   * with 408 (timers B/F; default 32000). Over UDP a dead peer sends nothing
   * back, so this bounds how long a call to it can hang.
   */
  transactionTimeoutMs?: number;
  /**
   * Send requests over 1300 bytes by TCP instead of UDP (RFC 3261 18.1.1;
   * default false). An emergency INVITE with its PIDF-LO is always that big,
   * and a UDP-only peer then costs a failed TCP connect before the UDP
   * fallback. Name ;transport=tcp in the target or proxy to use TCP.
   */
  largeRequestsOverTcp?: boolean;
  /** Backend log verbosity, 0..6 (pjsip levels; default 3). */
  logLevel?: number;
  /** Log every SIP message (debugging only). */
  logSipMessages?: boolean;
}

export interface SoundDevices {
  /** ALSA device names as ALSA lists them, e.g. 'default', 'sysdefault:CARD=PCH', 'plughw:CARD=Audio,DEV=0'. */
  capture: string;
  playback: string;
}

export interface StartResult {
  transports: { id: number; kind: TransportKind; host: string; port: number }[];
  /** The local account of each transport kind: calls that need no registration. */
  localAccounts: Partial<Record<TransportKind, AccountId>>;
  /** Backend version, e.g. pjproject's. */
  version: string;
  /** Which sound device calls use: 'null' when asked for, or when the configured one failed (fallbackReason). */
  sound?: { device: 'null' | 'configured'; capture?: string; playback?: string; fallbackReason?: string };
}

export interface StopOptions {
  /** Unregister accounts and end calls over the network first (default true; takes about 1 s). */
  unregister?: boolean;
}

export interface Credential {
  /** '*' (default) answers any realm. */
  realm?: string;
  username: string;
  password: string;
}

export interface AccountConfig {
  /** Address of record, e.g. 'sip:1001@pbx.example' or '"Desk" <sip:1001@pbx.example>'. */
  uri: string;
  /** Registrar URI, e.g. 'sip:pbx.example;transport=tcp'. No registrar: never registers. */
  registrar?: string;
  /** Outbound proxies (route set), e.g. ['sip:10.0.0.1:5060;lr']. */
  proxies?: string[];
  credentials?: Credential[];
  /** Register when added (default: true when a registrar is given). */
  register?: boolean;
  regTimeoutSec?: number;
  /** How long stop() waits for this account's unregistration. */
  unregTimeoutMs?: number;
  /** Send only over this transport (its StartResult id). */
  transportId?: number;
  isDefault?: boolean;
}

export interface SipHeader {
  name: string;
  value: string;
}

/** One extra part of a multipart/mixed body (the stack appends its SDP as the last part). */
export interface BodyPart {
  /** e.g. 'application/pidf+xml' (parameters allowed after ';'). */
  contentType: string;
  body: string;
  /** Part headers, e.g. { name: 'Content-ID', value: '<loc@phone.example>' }. */
  headers?: SipHeader[];
}

export interface MakeCallOptions {
  /** An account id, or 'local' for the transport's local account (default). */
  account?: AccountId | 'local';
  headers?: SipHeader[];
  /** When given, the INVITE body is multipart/mixed: these parts, then the SDP. */
  parts?: BodyPart[];
  /** From URI for this call only (e.g. the callback number). */
  from?: string;
  /** Request-URI when it differs from the target (To). */
  requestUri?: string;
  /**
   * SDP attributes added to the audio m-line of every offer this call makes (the INVITE's,
   * and re-INVITEs such as hold), e.g. RFC 8373 `hlang-send`/`hlang-recv`: `a=<name>:<value>`.
   */
  audioAttributes?: SdpAttribute[];
}

/** One SDP attribute line, `a=<name>:<value>` (`a=<name>` when value is empty). */
export interface SdpAttribute {
  /** An SDP token: letters, digits and - _ . */
  name: string;
  /** One line: no CR, LF or NUL. */
  value: string;
}

export type CallState = 'NULL' | 'CALLING' | 'INCOMING' | 'EARLY' | 'CONNECTING' | 'CONFIRMED' | 'DISCONNECTED';
export type MediaStatus = 'none' | 'active' | 'localHold' | 'remoteHold' | 'error';
export type DtmfMethod = 'rfc2833' | 'info';

export interface RegistrationEvent {
  at: number;
  accountId: AccountId;
  /** SIP status of the last REGISTER (pjsip's 408/503 when it never got one). */
  code: number;
  reason: string;
  /** Granted expiry in seconds (0 when unregistered or failed). */
  expires: number;
  /** True for a (re-)registration, false for an unregistration. */
  renew: boolean;
  registered: boolean;
  /** Transport or stack error text, when there was one. */
  error?: string;
}

export interface IncomingCallEvent {
  at: number;
  callId: CallId;
  accountId: AccountId;
  remoteUri: string;
  localUri: string;
  sipCallId: string;
  /** The request's headers named in VoiceStartOptions.incomingHeaders, in order. */
  headers: SipHeader[];
  autoAnswered: boolean;
  /**
   * Where the INVITE's packet came from, as the socket saw it (pjsip's
   * rdata->pkt_info): unlike Via, From or Contact, not written by the sender.
   */
  sourceAddress?: string;
  sourcePort?: number;
  transport?: TransportKind;
  /** Arrived on a TLS connection this stack opened with the server certificate checked. */
  tlsVerified?: boolean;
}

/** RTP figures of a call, summed over its streams (pjmedia's RTCP statistics). */
export interface CallMediaStats {
  rtpSent: number;
  rtpReceived: number;
  /** Packets we expected from the peer and never got. */
  rtpLost: number;
  /** Packets the peer reported lost (its RTCP receiver reports). */
  rtpLostByPeer: number;
  /** Interarrival jitter of what we received, mean and max (ms). */
  jitterMs: number;
  jitterMaxMs: number;
}

export interface CallStateEvent {
  at: number;
  callId: CallId;
  accountId: AccountId;
  state: CallState;
  /** Last SIP status seen on the call (pjsip's own 408/503 on timeouts and transport errors). */
  lastStatusCode: number;
  lastStatusReason: string;
  sipCallId: string;
  remoteUri: string;
  role: 'caller' | 'callee';
  /** On DISCONNECTED: the call ended because the transport failed. */
  transportError?: boolean;
  /** On DISCONNECTED, when the call had media: its RTP figures. */
  media?: CallMediaStats;
  /** On DISCONNECTED, in audio test mode: the WAV of what the call received. */
  recording?: string;
}

/** The sound device failed (at start or when a call needed it: the call went on with the null device), or works again. */
export interface SoundDeviceEvent {
  at: number;
  ok: boolean;
  phase: 'start' | 'call';
  capture: string;
  playback: string;
  reason?: string;
  callId?: CallId;
}

export interface MediaStateEvent {
  at: number;
  callId: CallId;
  status: MediaStatus;
}

/**
 * Every provisional and 2xx response received to an INVITE this stack sent, 100 Trying
 * included (re-INVITEs too: see cseq). A final failure (>= 300) is not reported here:
 * pjsua ends the call first, and only the DISCONNECTED callState carries its code
 * (test/helpers/voice-contract.ts checks both backends for this).
 */
export interface InviteResponseEvent {
  at: number;
  callId: CallId;
  code: number;
  reason: string;
  cseq: number;
  sipCallId: string;
}

export interface DtmfEvent {
  at: number;
  callId: CallId;
  digit: string;
  method: DtmfMethod;
  durationMs?: number;
}

/** A WAV playback (playFile) reached the end of its file: `plays` times so far. */
export interface PlaybackEvent {
  at: number;
  playbackId: PlaybackId;
  callId: CallId;
  plays: number;
}

export interface VoiceEvents {
  registration: RegistrationEvent;
  incomingCall: IncomingCallEvent;
  callState: CallStateEvent;
  mediaState: MediaStateEvent;
  inviteResponse: InviteResponseEvent;
  dtmf: DtmfEvent;
  soundDevice: SoundDeviceEvent;
  playback: PlaybackEvent;
}

export interface AccountInfo {
  accountId: AccountId;
  uri: string;
  isDefault: boolean;
  hasRegistration: boolean;
  registered: boolean;
  statusCode: number;
  statusText: string;
  expires: number;
}

export interface CallInfo {
  callId: CallId;
  accountId: AccountId;
  role: 'caller' | 'callee';
  state: CallState;
  lastStatusCode: number;
  lastStatusReason: string;
  sipCallId: string;
  localUri: string;
  remoteUri: string;
  mediaStatus: MediaStatus;
  connectDurationMs: number;
}

export interface VoiceStack {
  /** Start the stack (one per process for PJSIP). Rejects on a bad config or a port in use. */
  start(options: VoiceStartOptions): Promise<StartResult>;
  /** End calls, unregister (unless told not to), free everything. Safe to call when stopped. */
  stop(options?: StopOptions): Promise<void>;
  readonly running: boolean;

  addAccount(config: AccountConfig): AccountId;
  /** Send a REGISTER now (also refreshes an existing registration). */
  register(account: AccountId): void;
  unregister(account: AccountId): void;
  /** Unregisters (if registered) and forgets the account. */
  removeAccount(account: AccountId): void;
  accountInfo(account: AccountId): AccountInfo;

  /**
   * Send an INVITE now and return its call id. Synchronous and fast: this is
   * the emergency path. A bare `urn:` target (urn:service:sos) is written
   * `<urn:...>` so the dialog keeps its To tag.
   *
   * A call that cannot leave throws (the error's `pjStatus` says why). A TCP or
   * TLS connect that fails may do either: throw at once when the kernel refuses
   * before PJSIP returns, or end the call with 503 and `transportError`. The
   * caller handles both the same way (next route).
   */
  makeCall(target: string, options?: MakeCallOptions): CallId;
  /** Answer an incoming call: 180 rings, 200 (default) answers, >= 300 rejects. */
  answer(call: CallId, code?: number, reason?: string): void;
  /** Hang up (CANCEL, reject or BYE as the state calls for). */
  hangup(call: CallId, code?: number, reason?: string): void;
  hangupAll(): void;
  /** Put on hold / resume with a re-INVITE. */
  hold(call: CallId): void;
  unhold(call: CallId): void;
  sendDtmf(call: CallId, digits: string, method?: DtmfMethod): void;
  /**
   * Play a WAV file (16-bit PCM mono, any rate) to the far end of a call with
   * active media, from its start; with loop, over and over. Each time the file
   * plays through, a `playback` event counts it. The playback ends with the
   * call, or with stopPlayback. Throws when the call has no media yet, or when
   * the stack's players are all in use.
   */
  playFile(call: CallId, file: string, options?: { loop?: boolean }): PlaybackId;
  /** Stop a playback; one that already ended (its call is over) is ignored. */
  stopPlayback(playback: PlaybackId): void;
  /**
   * What the stack knows of a call now (it may be ahead of the events still on their way).
   * Throws for an id that names no call; an ended call is forgotten soon after its
   * DISCONNECTED (until then it reads DISCONNECTED).
   */
  callInfo(call: CallId): CallInfo;

  /** Subscribe to an event; returns the unsubscribe function. */
  on<K extends keyof VoiceEvents>(event: K, listener: (e: VoiceEvents[K]) => void): () => void;
}

/** The bare `urn:` target fix: pjsip loses the To tag of `urn:service:sos` unless bracketed. */
export function normalizeTarget(target: string): string {
  const t = target.trim();
  return /^urn:/i.test(t) ? `<${t}>` : t;
}

/** The local-account transport a target needs, from its ;transport= parameter or sips: scheme. */
export function transportOf(target: string): TransportKind {
  if (/^<?sips:/i.test(target.trim())) return 'tls';
  const m = /;transport=(udp|tcp|tls)/i.exec(target);
  return (m?.[1]?.toLowerCase() as TransportKind | undefined) ?? 'udp';
}
