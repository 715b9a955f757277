// The system time zone read without ICU's date formatter: the same name ICU gives
// (asked in a child process with that TZ, since a process keeps its first zone),
// the /etc/localtime link, and ICU asked only when neither names a zone.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { systemTimeZone } from '../../../hal/timezone.js';

const icuIn = (tz: string) =>
  execFileSync(process.execPath, ['-p', 'Intl.DateTimeFormat().resolvedOptions().timeZone'], {
    env: { PATH: process.env.PATH, TZ: tz },
  })
    .toString()
    .trim();
const noIcu = () => {
  throw new Error('ICU was asked');
};

describe('systemTimeZone', () => {
  it.each(['America/Chicago', 'Europe/Paris', 'Asia/Tokyo', 'UTC', 'Etc/UTC', 'Etc/GMT', ':America/New_York'])(
    'TZ=%s: the name ICU gives, without asking it',
    (tz) => {
      expect(systemTimeZone({ env: { TZ: tz }, localtime: '/nonexistent', icu: noIcu })).toBe(icuIn(tz));
    },
  );

  it('reads the /etc/localtime link when TZ is not set (posix/ and right/ are the same zones)', () => {
    const link = (target: string) => (p: string) => {
      expect(p).toBe('/host/etc/localtime');
      return target;
    };
    const src = { env: {}, localtime: '/host/etc/localtime', icu: noIcu };
    expect(systemTimeZone({ ...src, readlink: link('/usr/share/zoneinfo/America/Denver') })).toBe('America/Denver');
    expect(systemTimeZone({ ...src, readlink: link('../usr/share/zoneinfo/posix/Europe/Berlin') })).toBe('Europe/Berlin');
    expect(systemTimeZone({ ...src, readlink: link('/usr/share/zoneinfo/Etc/UTC') })).toBe('UTC');
    expect(systemTimeZone({ env: { TZ: '/usr/share/zoneinfo/right/Asia/Tokyo' }, localtime: '/x', icu: noIcu })).toBe('Asia/Tokyo');
  });

  it('asks ICU when nothing names a zone: a copied zone file, a POSIX TZ rule', () => {
    const notALink = () => {
      throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    };
    expect(systemTimeZone({ env: {}, localtime: '/etc/localtime', readlink: notALink, icu: () => 'America/Halifax' })).toBe(
      'America/Halifax',
    );
    expect(systemTimeZone({ env: { TZ: 'CST6CDT,M3.2.0,M11.1.0' }, localtime: '/x', icu: () => 'America/Chicago' })).toBe(
      'America/Chicago',
    );
    // ICU without an answer either: UTC, as the C library assumes.
    expect(systemTimeZone({ env: {}, localtime: '/x', readlink: notALink, icu: () => undefined })).toBe('UTC');
  });
});
