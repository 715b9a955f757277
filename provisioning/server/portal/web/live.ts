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

  /** @param onRevoked the server ended the stream because the session's token was revoked. */
  constructor(private readonly onRevoked: () => void = () => {}) {}

  open(): void {
    if (this.source) return;
    const source = new EventSource('/api/stream');
    this.source = source;
    this.setState('connecting');
    source.onopen = () => this.setState('open');
    // EventSource retries by itself after a drop; the state shows the gap.
    source.onerror = () => this.setState(source.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
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
    this.source?.close();
    this.source = null;
    this.setState('closed');
  }

  on<K extends LiveKind>(kind: K, fn: (payload: LivePayload<K>) => void): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
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
