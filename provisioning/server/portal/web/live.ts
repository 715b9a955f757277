// The server's event stream (/api/stream, server-sent events): one connection
// per open portal, reconnected by the browser; pages subscribe to the kinds
// they show.
import type { BusEvents } from './types.js';

export type LiveKind = keyof BusEvents;
export type LivePayload<K extends LiveKind> = BusEvents[K][0];
export type LiveState = 'connecting' | 'open' | 'closed';

export class LiveStream {
  private source: EventSource | null = null;
  private readonly listeners = new Map<LiveKind, Set<(p: unknown) => void>>();
  private readonly stateListeners = new Set<(s: LiveState) => void>();
  state: LiveState = 'closed';

  private retry: ReturnType<typeof setTimeout> | null = null;

  /**
   * @param onRevoked the server ended the stream because the session's token was revoked.
   * @param onGaveUp the browser stopped retrying (an answer that was not a stream: a 401, a proxy's 502);
   *   the stream is opened again in 5 s, and the caller may check why (a 401 means log in again).
   */
  constructor(
    private readonly onRevoked: () => void = () => {},
    private readonly onGaveUp: () => void = () => {},
  ) {}

  open(): void {
    if (this.source) return;
    const source = new EventSource('/api/stream');
    this.source = source;
    this.setState('connecting');
    source.onopen = () => this.setState('open');
    source.onerror = () => {
      // EventSource retries by itself after a drop; the state shows the gap.
      if (source.readyState !== EventSource.CLOSED) return this.setState('connecting');
      // But not after an answer that is not an event stream: without this the portal would
      // stay without live updates (and 911 alerts) until it is reloaded.
      source.close();
      this.source = null;
      this.setState('connecting');
      this.retry = setTimeout(() => {
        this.retry = null;
        this.open();
      }, 5000);
      this.onGaveUp();
    };
    source.addEventListener('revoked', () => {
      this.close();
      this.onRevoked();
    });
    for (const kind of ['emergency', 'event', 'phone', 'job', 'notification', 'change'] as LiveKind[]) {
      source.addEventListener(kind, (msg) => {
        let payload: unknown;
        try {
          payload = JSON.parse((msg as MessageEvent<string>).data);
        } catch {
          console.error(`live: unreadable ${kind} message`, (msg as MessageEvent<string>).data);
          return;
        }
        for (const fn of this.listeners.get(kind) ?? []) fn(payload);
      });
    }
  }

  close(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.source?.close();
    this.source = null;
    this.setState('closed');
  }

  on<K extends LiveKind>(kind: K, fn: (payload: LivePayload<K>) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) {
      set = new Set();
      this.listeners.set(kind, set);
    }
    const f = fn as (p: unknown) => void;
    set.add(f);
    return () => set.delete(f);
  }

  onState(fn: (s: LiveState) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  private setState(s: LiveState): void {
    this.state = s;
    for (const fn of this.stateListeners) fn(s);
  }
}
