// Asks the LIS (HELD) where the phone is: at start, after every network change,
// and every refreshMs. Keeps the last good answer; 'update' fires only when the
// answer changes. Requests never overlap: a change during one asks again after it.
import { EventEmitter } from 'node:events';
import type { Logger } from '../../provisioning/common/log.js';
import { heldRequest, type HeldResult } from './held.js';

export type HeldAnswer = Extract<HeldResult, { ok: true }> & { url: string };

export interface HeldPollerOptions {
  url: string;
  responseTimeMs: number;
  refreshMs: number;
  log: Logger;
  fetch?: typeof fetch;
}

export class HeldPoller extends EventEmitter<{ update: [HeldAnswer | null] }> {
  private answer: HeldAnswer | null = null;
  private text = 'null';
  private inFlight = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  lastError: { code: string; message: string } | null = null;

  constructor(private readonly opts: HeldPollerOptions) {
    super();
  }

  current(): HeldAnswer | null {
    return this.answer;
  }

  start(): void {
    this.stopped = false;
    this.refresh();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  refresh(): void {
    if (this.stopped) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    void this.ask();
  }

  private async ask(): Promise<void> {
    this.inFlight = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const r = await heldRequest({
      url: this.opts.url,
      responseTimeMs: this.opts.responseTimeMs,
      ...(this.opts.fetch ? { fetch: this.opts.fetch } : {}),
    });
    this.inFlight = false;
    if (this.stopped) return;
    try {
      if (r.ok) {
        this.lastError = null;
        this.set({ ...r, url: this.opts.url });
      } else {
        // A LIS that says it cannot locate us withdraws its old answer; a transport error keeps it.
        if (this.lastError?.code !== r.code)
          this.opts.log.warn({ code: r.code, message: r.message, url: this.opts.url }, 'HELD request failed');
        this.lastError = { code: r.code, message: r.message };
        if (r.code === 'notLocatable' || r.code === 'locationUnknown') this.set(null);
      }
    } catch (err) {
      // A listener that failed (a store write, say) must not stop the polling: the next round runs as planned.
      this.opts.log.error({ err }, 'HELD answer listener failed');
    }
    if (this.again) {
      this.again = false;
      return this.ask();
    }
    this.timer = setTimeout(() => this.refresh(), this.opts.refreshMs);
    this.timer.unref();
  }

  private set(a: HeldAnswer | null): void {
    const text = JSON.stringify(a);
    if (text === this.text) return;
    this.text = text;
    this.answer = a;
    this.emit('update', a);
  }
}
