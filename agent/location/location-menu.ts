// The location prompt and menu on the phone's display. When the network does not
// fit the assigned location (recommend.ts), the prompt names the assigned location
// and the suggestion; Soft1 accepts the suggestion, OK opens the menu. The menu
// shows one location at a time (the display has four rows): up/down move, OK uses
// it, Cancel goes back to the prompt. Only function keys: digits always go to the
// dialer, so 911 works whatever is on the screen.
//
// The menu offers what the assessment offers (the matches, or every location when
// none match), plus the assigned location to keep when it is not among them. With
// every location offered (up to 5000) entries are read from the view one at a time
// when shown, never all at once (locations-view.ts says why).
import type { Logger } from '../../provisioning/common/log.js';
import type { Alerts, FunctionKey } from '../../hal/handset.js';
import type { RecommendedLocation } from '../../provisioning/protocol/locations.js';
import { formatAddressLines } from '../../provisioning/protocol/address.js';
import type { Assessment } from './recommend.js';
import type { LocationsView } from './locations-view.js';

export const CHOSEN_ALERT_ID = 'location-chosen';

export interface LocationMenuDeps {
  alerts: Alerts;
  /** The id the prompt and the menu are raised under (the mismatch alert's). */
  alertId: string;
  log: Logger;
  locations: () => LocationsView | null;
  /** The service's select(): 'current' confirms the assigned location. Throws a coded error when it cannot. */
  select: (idOrCurrent: string) => { locationId: string; confirmed: boolean };
}

interface Offer {
  assessment: Assessment;
  /** The suggestion Soft1 accepts: the first location the network matches, if any. */
  suggested: RecommendedLocation | null;
  count: number;
  entry: (i: number) => RecommendedLocation | null;
}

export class LocationMenu {
  private offer: Offer | null = null;
  /** The menu's position; null while the prompt is shown. */
  private position: number | null = null;

  constructor(private readonly deps: LocationMenuDeps) {}

  /** Whether the menu (not the prompt) is on the display. */
  get open(): boolean {
    return this.position !== null;
  }

  /** The assessment says mismatch: show the prompt, or keep the open menu on its entry with the new offer. */
  show(a: Assessment): void {
    this.offer = this.offerOf(a);
    if (this.position !== null && this.offer.count > 0) {
      this.position = Math.min(this.position, this.offer.count - 1);
      this.drawMenu();
    } else {
      this.position = null;
      this.drawPrompt();
    }
  }

  /** The mismatch is over (or answered): nothing of ours stays on the display. */
  close(): void {
    this.offer = null;
    this.position = null;
    this.deps.alerts.clear(this.deps.alertId);
  }

  private offerOf(a: Assessment): Offer {
    const suggested = a.matches.find((m) => m.id !== a.assigned?.id) ?? null;
    if (a.choices === 'all') {
      const view = this.deps.locations();
      const count = view?.count ?? 0;
      return { assessment: a, suggested, count, entry: (i) => (view && i >= 0 && i < count ? (view.at([i])[0] ?? null) : null) };
    }
    const list = [...a.matches];
    if (a.assigned && !list.some((l) => l.id === a.assigned!.id)) list.push(a.assigned);
    return { assessment: a, suggested, count: list.length, entry: (i) => list[i] ?? null };
  }

  private drawPrompt(): void {
    const o = this.offer!;
    const a = o.assessment;
    this.deps.alerts.raise({
      id: this.deps.alertId,
      lines: [
        'CHECK YOUR LOCATION',
        `Set: ${a.assigned?.name ?? 'none'}`,
        o.suggested ? `Network says: ${o.suggested.name}` : `No match: ${o.count} to choose`,
        o.suggested ? 'Soft1: accept  OK: list' : 'OK: list',
      ],
      led: 'blink-slow',
      onKey: (k) => this.promptKey(k),
    });
  }

  private drawMenu(): void {
    const o = this.offer!;
    const i = this.position!;
    const l = o.entry(i);
    const tag = !l ? '' : l.id === o.assessment.assigned?.id ? ' (set now)' : l.id === o.suggested?.id ? ' (network)' : '';
    this.deps.alerts.raise({
      id: this.deps.alertId,
      lines: [
        `${i + 1}/${o.count} ${l?.name ?? '?'}${tag}`,
        ...(l
          ? formatAddressLines(l.civic)
              .filter((line) => line !== l.civic.NAM && line !== l.civic.country)
              .slice(0, 1)
          : []),
        'OK: use  Cancel: back',
      ],
      led: 'blink-slow',
      onKey: (k) => this.menuKey(k),
    });
  }

  private promptKey(k: FunctionKey): boolean {
    const o = this.offer;
    if (!o) return false;
    if (k === 'soft1' && o.suggested) {
      this.choose(o.suggested, o.assessment);
      return true;
    }
    if (k === 'ok' && o.count > 0) {
      // The suggestion first: it is where the list starts.
      let start = 0;
      if (o.suggested && o.assessment.choices === 'matches') start = Math.max(0, o.assessment.matches.indexOf(o.suggested));
      this.position = start;
      this.drawMenu();
      return true;
    }
    return false;
  }

  private menuKey(k: FunctionKey): boolean {
    const o = this.offer;
    if (!o || this.position === null) return false;
    if (k === 'up' || k === 'down') {
      // Wraps around: the list can be long and the keys are few.
      this.position = (this.position + (k === 'down' ? 1 : o.count - 1)) % o.count;
      this.drawMenu();
      return true;
    }
    if (k === 'cancel') {
      this.position = null;
      this.drawPrompt();
      return true;
    }
    if (k === 'ok' || k === 'soft1') {
      const l = o.entry(this.position);
      if (l) this.choose(l, o.assessment);
      return true;
    }
    return false;
  }

  private choose(l: RecommendedLocation, a: Assessment): void {
    const keep = l.id === a.assigned?.id;
    try {
      this.deps.select(keep ? 'current' : l.id);
    } catch (err) {
      // Shown in the prompt's place (an alert raised beside it would stay under it); OK goes back.
      this.deps.log.error({ err, locationId: l.id }, 'the location chosen on the keypad could not be set');
      this.deps.alerts.raise({
        id: this.deps.alertId,
        lines: ['LOCATION NOT SET', (err as Error).message, 'OK: back'],
        led: 'blink-slow',
        onKey: (k) => {
          if (k !== 'ok' && k !== 'cancel') return false;
          this.position = null;
          if (this.offer) this.drawPrompt();
          return true;
        },
      });
      return;
    }
    // select() closed the prompt (close() above); the result stays until OK.
    this.deps.alerts.raise({
      id: CHOSEN_ALERT_ID,
      lines: [keep ? 'LOCATION CONFIRMED' : 'LOCATION SET', l.name, '911 sends this address', 'OK: close'],
      led: 'off',
      onKey: (k) => {
        if (k !== 'ok' && k !== 'cancel' && k !== 'soft1') return false;
        this.deps.alerts.clear(CHOSEN_ALERT_ID);
        return true;
      },
    });
  }
}
