// The pushed locations as the main thread keeps them: the stored parts as JSON
// text and a compact matcher index, not 5000 parsed locations. A 2 MiB document
// parsed and kept alive is ~100,000 small objects; every scavenge that ran while
// they were young copied them all (25-38 ms on the main thread, a 911 INVITE
// waiting behind it). A few 64 KiB strings and typed arrays cost the GC next to
// nothing. A location is parsed again (its part only, then dropped) when it must
// be shown or chosen: a match, the assigned one, the user's pick, the menu.
import type { RecommendedLocation } from '../../provisioning/protocol/locations.js';
import type { CompactIndex, LocationsHead, PartText } from './locations-verify.js';
import { compileRules, inPrefixAt, type ParsedFacts } from './match.js';

/** The locations document as the recommendation and the location menu read it. */
export interface LocationsView {
  readonly head: LocationsHead;
  /** How many locations the document has. */
  readonly count: number;
  /** Indexes, in document order, of the locations whose IP groups or switch ports match. */
  matching(facts: ParsedFacts): number[];
  /**
   * The first location, in document order, for which `pred` holds. `text` is a string value
   * the location carries (its id or code): only parts whose text has it are parsed.
   */
  findFirst(text: string, pred: (l: RecommendedLocation) => boolean): RecommendedLocation | null;
  /** The locations at these indexes (ascending), in that order. */
  at(indexes: readonly number[]): RecommendedLocation[];
  /** Every location (the location menu when none match): parsed now, kept by no one here. */
  all(): RecommendedLocation[];
}

/** The part's text (a string made from its bytes dies young: it is parsed or stored, then dropped). */
export function partText(part: PartText): string {
  return typeof part === 'string' ? part : Buffer.from(part.buffer, part.byteOffset, part.byteLength).toString('utf8');
}

function partIncludes(part: PartText, needle: string): boolean {
  return typeof part === 'string' ? part.includes(needle) : Buffer.from(part.buffer, part.byteOffset, part.byteLength).includes(needle);
}

/** Per CIDR rule in CompactLocations.rules: v6 flag, four network words, prefix, location index. */
const STRIDE = 7;

/** A Uint32Array that grows: the rules of 5000 locations without a boxed number each. */
class U32Builder {
  private buf = new Uint32Array(1024);
  length = 0;

  push(...xs: number[]): void {
    if (this.length + xs.length > this.buf.length) {
      const bigger = new Uint32Array(Math.max(this.buf.length * 2, this.length + xs.length));
      bigger.set(this.buf.subarray(0, this.length));
      this.buf = bigger;
    }
    for (const x of xs) this.buf[this.length++] = x;
  }

  done(): Uint32Array {
    return this.buf.slice(0, this.length);
  }
}

/**
 * Builds a CompactLocations one part at a time (a part per event-loop turn): each part is
 * parsed, its rules compiled into the index, and its objects dropped at once, so they die
 * young and a scavenge never has many to copy.
 */
export class CompactLocationsBuilder {
  private readonly parts: string[] = [];
  private readonly starts: number[] = [0];
  private readonly rules = new U32Builder();
  private readonly switchTexts: string[] = [];
  private count = 0;

  /** One stored part: a JSON array of locations. Throws when it is not one. */
  addPart(text: string): void {
    const locs = JSON.parse(text) as unknown;
    if (!Array.isArray(locs)) throw new Error('a stored locations part is not a JSON array');
    let switches = '';
    for (const loc of locs as RecommendedLocation[]) {
      const index = this.count++;
      const c = compileRules(loc);
      for (const r of c.rules) this.rules.push(r.v6 ? 1 : 0, r.words[0], r.words[1], r.words[2], r.words[3], r.prefix, index);
      // One line per switch rule: "\n<chassis JSON>\t<port JSON or *>\t<index>". JSON never
      // holds a raw tab or newline, so a chassis is found by its line start, exactly.
      for (const sp of c.switches)
        switches += `\n${JSON.stringify(sp.chassisId)}\t${sp.portId === undefined ? '*' : JSON.stringify(sp.portId)}\t${index}`;
    }
    this.parts.push(text);
    this.starts.push(this.count);
    if (switches) this.switchTexts.push(`${switches}\n`);
  }

  finish(head: LocationsHead): CompactLocations {
    return CompactLocations.fromIndex(head, this.parts, this.index());
  }

  /** The index of the parts added so far (the worker sends it with the parts). */
  index(): CompactIndex {
    return { starts: Int32Array.from(this.starts), rules: this.rules.done(), switchTexts: this.switchTexts };
  }
}

export class CompactLocations implements LocationsView {
  constructor(
    readonly head: LocationsHead,
    /** The stored parts, as stored: JSON arrays of locations (text, or its bytes). */
    private readonly parts: readonly PartText[],
    /** starts[p]: index of part p's first location; starts[parts.length] is the count. */
    private readonly starts: Int32Array,
    private readonly rules: Uint32Array,
    private readonly switchTexts: readonly string[],
  ) {}

  /** The document from its parts and their index (built by CompactLocationsBuilder, here or in the worker). */
  static fromIndex(head: LocationsHead, parts: readonly PartText[], index: CompactIndex): CompactLocations {
    const { starts, rules, switchTexts } = index;
    if (starts.length !== parts.length + 1 || rules.length % STRIDE !== 0)
      throw new Error(`locations index does not fit its parts (${starts.length} starts for ${parts.length} parts)`);
    return new CompactLocations(head, parts, starts, rules, switchTexts);
  }

  get count(): number {
    return this.starts[this.parts.length]!;
  }

  /** How many stored parts the document has. */
  get partCount(): number {
    return this.parts.length;
  }

  matching(facts: ParsedFacts): number[] {
    const hit = new Uint8Array(this.count);
    const r = this.rules;
    for (let o = 0; o < r.length; o += STRIDE) {
      const index = r[o + 6]!;
      if (hit[index]) continue;
      const v6 = r[o] === 1;
      for (const a of facts.addresses) {
        // The rule's words read in place: a closure per rule and address was 1.2 MB per assessment of 5000.
        if (a.v6 === v6 && inPrefixAt(v6, r[o + 5]!, r, o + 1, a.words)) {
          hit[index] = 1;
          break;
        }
      }
    }
    for (const s of facts.switches) {
      const needle = `\n${JSON.stringify(s.chassisId)}\t`;
      const port = JSON.stringify(s.portId);
      for (const text of this.switchTexts) {
        for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
          const from = at + needle.length;
          const tab = text.indexOf('\t', from);
          const end = text.indexOf('\n', tab);
          const p = text.slice(from, tab);
          if (p === '*' || p === port) hit[Number(text.slice(tab + 1, end))] = 1;
        }
      }
    }
    const out: number[] = [];
    for (let i = 0; i < hit.length; i++) if (hit[i]) out.push(i);
    return out;
  }

  findFirst(text: string, pred: (l: RecommendedLocation) => boolean): RecommendedLocation | null {
    // The parts are JSON.stringify's output: a location carrying `text` has it in this form.
    const needle = JSON.stringify(text);
    for (const part of this.parts) {
      if (!partIncludes(part, needle)) continue;
      const found = (JSON.parse(partText(part)) as RecommendedLocation[]).find(pred);
      if (found) return found;
    }
    return null;
  }

  at(indexes: readonly number[]): RecommendedLocation[] {
    const out: RecommendedLocation[] = [];
    let p = -1;
    let locs: RecommendedLocation[] = [];
    for (const i of indexes) {
      if (!(i >= 0 && i < this.count)) throw new RangeError(`no location ${i} of ${this.count}`);
      if (p < 0 || i < this.starts[p]! || i >= this.starts[p + 1]!) {
        p = this.partOf(i);
        locs = JSON.parse(partText(this.parts[p]!)) as RecommendedLocation[];
      }
      out.push(locs[i - this.starts[p]!]!);
    }
    return out;
  }

  all(): RecommendedLocation[] {
    const out: RecommendedLocation[] = [];
    for (const part of this.parts) for (const l of JSON.parse(partText(part)) as RecommendedLocation[]) out.push(l);
    return out;
  }

  private partOf(i: number): number {
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
