// Typed listener registry shared by the VoiceStack backends. A throwing
// listener must not stop the others, nor reach the native event pump.
import type { VoiceEvents, VoiceLogger } from './types.js';

type Listener<K extends keyof VoiceEvents> = (e: VoiceEvents[K]) => void;

export class VoiceEventHub {
  private readonly listeners: { [K in keyof VoiceEvents]?: Set<Listener<K>> } = {};

  constructor(private readonly log?: VoiceLogger) {}

  on<K extends keyof VoiceEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners[event];
    if (!set) {
      set = new Set<Listener<K>>() as NonNullable<(typeof this.listeners)[K]>;
      this.listeners[event] = set;
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  emit<K extends keyof VoiceEvents>(event: K, payload: VoiceEvents[K]): void {
    const set = this.listeners[event];
    if (!set) return;
    for (const l of [...set]) {
      try {
        l(payload);
      } catch (err) {
        this.log?.error({ err, event }, 'voice event listener threw');
      }
    }
  }
}
