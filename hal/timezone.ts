// The system's IANA time zone, read as the C library and ICU read it (TZ, then the
// /etc/localtime link), without ICU: `Intl.DateTimeFormat().resolvedOptions()`
// builds a date formatter, which touches about 4.5 MB of ICU's data in the node
// binary (measured), resident for the life of the agent, for one name. ICU is
// still asked when neither gives a name (a copied /etc/localtime, a POSIX TZ rule).
import { readlinkSync } from 'node:fs';

// V8 reports every name of UTC as 'UTC' (JSDateTimeFormat canonicalizes them): so does this.
const UTC_NAMES = new Set([
  'UTC',
  'UCT',
  'Universal',
  'Zulu',
  'GMT',
  'GMT0',
  'GMT+0',
  'GMT-0',
  'Greenwich',
  'Etc/UTC',
  'Etc/UCT',
  'Etc/Universal',
  'Etc/Zulu',
  'Etc/GMT',
  'Etc/GMT0',
  'Etc/GMT+0',
  'Etc/GMT-0',
  'Etc/Greenwich',
]);
// An IANA name: "Area/Location[/Sub]" or a single word such as EST5EDT; not a POSIX rule ("CST6CDT,M3.2.0,M11.1.0").
const IANA = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

function fromZoneinfoPath(p: string): string | null {
  const i = p.lastIndexOf('zoneinfo/');
  if (i < 0) return null;
  // posix/ and right/ are the same zones with other leap-second handling.
  const name = p.slice(i + 'zoneinfo/'.length).replace(/^(posix|right)\//, '');
  return IANA.test(name) ? name : null;
}

function canonical(name: string): string {
  return UTC_NAMES.has(name) ? 'UTC' : name;
}

export interface TimeZoneSource {
  /** The process environment (TZ). */
  env: NodeJS.ProcessEnv;
  /** The zone file link, /etc/localtime on a phone. */
  localtime: string;
  /** Reads a link's target (tests); throws when it is not a link. */
  readlink?: (p: string) => string;
  /** The ICU answer, asked only when the above give no name. */
  icu?: () => string | undefined;
}

export function systemTimeZone(src: TimeZoneSource): string {
  const icu = src.icu ?? (() => Intl.DateTimeFormat().resolvedOptions().timeZone);
  const tz = src.env.TZ?.replace(/^:/, '');
  if (tz) {
    const name = tz.startsWith('/') ? fromZoneinfoPath(tz) : IANA.test(tz) ? tz : null;
    return canonical(name ?? icu() ?? 'UTC');
  }
  let name: string | null = null;
  try {
    name = fromZoneinfoPath((src.readlink ?? readlinkSync)(src.localtime));
  } catch {
    // Not a link (a copied file) or absent: ICU compares the file's contents, so it is asked.
  }
  return canonical(name ?? icu() ?? 'UTC');
}
