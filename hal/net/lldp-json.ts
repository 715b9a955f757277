// lldpcli -f json0 output: the stable JSON form (plain json switches between an
// object and an array with the count, as measured). `watch` prints concatenated
// objects {"lldp-added"|"lldp-updated"|"lldp-deleted": [...]}; `show neighbors`
// prints {"lldp": [...]}. Civic elements keep lldpd's names here; agent/location
// maps them to RFC 5139 through the one CAtype table.

export interface LldpPolicy {
  app: string;
  /** The VLAN when the switch says tagged; 0 means priority-tagged only. */
  vlan: number | null;
  defined: boolean;
  priority: string | null;
  pcp: number | null;
  dscp: number | null;
}

export interface LldpCoordinates {
  latitude: number;
  longitude: number;
  altitude: number | null;
  /** 'm' or 'floor' as lldpd prints it. */
  altitudeUnit: string | null;
  datum: string | null;
}

export interface LldpNeighbor {
  iface: string;
  /** lldpd's remote index on that interface (several neighbours can share one port). */
  rid: string;
  chassisId: string;
  chassisIdType: string;
  portId: string;
  portIdType: string;
  portDescr: string | null;
  sysName: string | null;
  ttl: number | null;
  med: {
    deviceType: string | null;
    /** [lldpd element name, value] in the order received; country first. */
    civic: [string, string][] | null;
    elin: string | null;
    coordinates: LldpCoordinates | null;
    policies: LldpPolicy[];
  } | null;
}

export type LldpWatchEvent = { kind: 'added' | 'updated' | 'deleted'; neighbors: LldpNeighbor[] };

type J = Record<string, unknown>;
const arr = (v: unknown): J[] => (Array.isArray(v) ? (v as J[]) : []);
const first = (v: unknown): J | undefined => arr(v)[0];
const val = (v: unknown): string | null => {
  const f = first(v);
  return f && typeof f.value === 'string' ? f.value : null;
};
const num = (s: string | null | undefined): number | null =>
  s !== null && s !== undefined && /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : null;

/** "39.77N" -> 39.77, "89.64W" -> -89.64 */
function degrees(s: string | null): number | null {
  const m = s ? /^(\d+(?:\.\d+)?)\s*([NSEW])$/i.exec(s.trim()) : null;
  if (!m) return num(s);
  const n = Number(m[1]);
  return /[SW]/i.test(m[2]!) ? -n : n;
}

function parseMed(m: J | undefined): LldpNeighbor['med'] {
  if (!m) return null;
  let civic: [string, string][] | null = null;
  let elin: string | null = null;
  let coordinates: LldpCoordinates | null = null;
  for (const loc of arr(m.location)) {
    if (loc.type === 'Civic address') {
      civic = [];
      for (const [key, v] of Object.entries(loc)) {
        if (key === 'type') continue;
        const value = val(v);
        if (value !== null) civic.push([key, value]);
      }
    } else if (loc.type === 'ELIN') {
      elin = val(loc.ecs);
    } else if (loc.type === 'Coordinates') {
      const lat = degrees(val(loc.lat));
      const lon = degrees(val(loc.lon));
      const alt = first(loc.altitude);
      if (lat !== null && lon !== null) {
        coordinates = {
          latitude: lat,
          longitude: lon,
          altitude: num(typeof alt?.value === 'string' ? alt.value : null),
          altitudeUnit: typeof alt?.unit === 'string' ? alt.unit : null,
          datum: typeof loc.geoid === 'string' ? loc.geoid : null,
        };
      }
    }
  }
  const policies: LldpPolicy[] = arr(m.policy).map((p) => {
    const vid = first(p.vlan)?.vid;
    return {
      app: typeof p.apptype === 'string' ? p.apptype : 'unknown',
      vlan: vid === undefined ? null : vid === 'priority' ? 0 : num(String(vid)),
      defined: p.defined === true || p.defined === 'yes',
      priority: val(p.priority),
      pcp: num(val(p.pcp)),
      dscp: num(val(p.dscp)),
    };
  });
  return { deviceType: val(m['device-type']), civic, elin, coordinates, policies };
}

export function parseInterface(i: J): LldpNeighbor | null {
  if (typeof i.name !== 'string') return null;
  const chassis = first(i.chassis);
  const port = first(i.port);
  const cid = first(chassis?.id);
  const pid = first(port?.id);
  return {
    iface: i.name,
    rid: typeof i.rid === 'string' ? i.rid : '0',
    chassisId: typeof cid?.value === 'string' ? cid.value : '',
    chassisIdType: typeof cid?.type === 'string' ? cid.type : 'unknown',
    portId: typeof pid?.value === 'string' ? pid.value : '',
    portIdType: typeof pid?.type === 'string' ? pid.type : 'unknown',
    portDescr: val(port?.descr),
    sysName: val(chassis?.name),
    ttl: num(val(port?.ttl)),
    med: parseMed(first(i['lldp-med'])),
  };
}

function interfacesOf(list: unknown): LldpNeighbor[] {
  return arr(list).flatMap((entry) =>
    arr(entry.interface)
      .map(parseInterface)
      .filter((n): n is LldpNeighbor => n !== null),
  );
}

/** `show neighbors details` output. */
export function parseNeighbors(doc: unknown): LldpNeighbor[] {
  return interfacesOf((doc as J | null)?.lldp);
}

/** One object printed by `watch`. */
export function parseWatchEvent(doc: unknown): LldpWatchEvent | null {
  const d = doc as J | null;
  if (!d) return null;
  for (const kind of ['added', 'updated', 'deleted'] as const) {
    if (`lldp-${kind}` in d) return { kind, neighbors: interfacesOf(d[`lldp-${kind}`]) };
  }
  return null;
}

/** Splits a stream of concatenated JSON objects; feed() returns the complete ones. */
export class JsonObjectSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private scanned = 0;

  feed(chunk: string): unknown[] {
    this.buf += chunk;
    const out: unknown[] = [];
    let start = 0;
    for (let i = this.scanned; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth === 0) {
          const text = this.buf.slice(start, i + 1).trim();
          start = i + 1;
          try {
            out.push(JSON.parse(text));
          } catch {
            // A torn object (lldpcli killed mid-write): drop it, keep the stream going.
          }
        }
      }
    }
    this.buf = this.buf.slice(start);
    this.scanned = this.buf.length;
    if (this.depth === 0) {
      this.buf = this.buf.trimStart();
      this.scanned = this.buf.length;
    }
    return out;
  }
}
