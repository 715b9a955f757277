// The audible half of the on-site 911 alert: a two-tone siren from Web Audio
// (no sound file to fetch, nothing to decode) that sounds until someone
// acknowledges it. Browsers refuse sound before the page has had a click; the
// state says so, and the banner then offers a button that starts it.
export type AlarmState = 'off' | 'sounding' | 'blocked';

export class Alarm {
  private ctx: AudioContext | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private osc: OscillatorNode | null = null;
  /** Whether the siren should sound: stop() during start()'s wait for the audio context wins. */
  private wanted = false;
  state: AlarmState = 'off';
  onChange: (s: AlarmState) => void = () => {};

  /** Call from a click (the login button): lets sound play later without one. */
  unlock(): void {
    this.context();
    void this.ctx?.resume().catch((e: Error) => console.warn(`audio: ${e.message}`));
  }

  async start(): Promise<void> {
    this.wanted = true;
    const ctx = this.context();
    if (!ctx) return this.set('blocked');
    if (ctx.state !== 'running') {
      // resume() waits for a gesture when autoplay is refused: do not wait on it.
      // Its refusal shows in ctx.state below, which decides 'blocked'.
      await Promise.race([ctx.resume().catch((e: Error) => console.warn(`audio: ${e.message}`)), new Promise((r) => setTimeout(r, 200))]);
      // Acknowledged while waiting: no siren for an alert that is gone.
      if (!this.wanted) return;
    }
    if (ctx.state !== 'running') return this.set('blocked');
    if (this.osc) return this.set('sounding');
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    gain.gain.value = 0.2;
    osc.type = 'square';
    osc.connect(gain).connect(ctx.destination);
    let high = true;
    osc.frequency.value = 960;
    this.timer = setInterval(() => {
      high = !high;
      osc.frequency.setValueAtTime(high ? 960 : 770, ctx.currentTime);
    }, 450);
    osc.start();
    this.osc = osc;
    this.set('sounding');
  }

  stop(): void {
    this.wanted = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.osc?.stop();
    this.osc?.disconnect();
    this.osc = null;
    this.set('off');
  }

  private context(): AudioContext | null {
    if (!this.ctx && typeof AudioContext !== 'undefined') this.ctx = new AudioContext();
    return this.ctx;
  }

  private set(s: AlarmState): void {
    this.state = s;
    this.onChange(s);
  }
}
