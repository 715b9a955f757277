// Units of the provisioning server: the CSV reader and writer, input rules,
// broker access rules, and what a notification says.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { csvRecord, parseCsv, restoreFormula, neutraliseFormula, CsvSyntaxError } from '../../provisioning/server/csv.js';
import { cidrProblem, emailProblem, isTimeZone, normalizeEmail } from '../../provisioning/server/validation.js';
import {
  hashPassword,
  isReservedDeviceId,
  mosquittoAcl,
  mosquittoConfSnippet,
  serverMqttUser,
  phoneMayPublish,
  phoneMaySubscribe,
  serverMayUse,
  topicMatches,
  verifyPassword,
} from '../../provisioning/server/broker-auth.js';
import { buildNotice, civicFromPidf, zonedTime } from '../../provisioning/server/notify/message.js';
import type { StoredEvent } from '../../provisioning/server/db/repo.js';

describe('CSV', () => {
  it('reads RFC 4180: quotes, doubled quotes, CRLF and LF, line breaks inside quotes, a BOM', () => {
    expect(parseCsv('\uFEFFa,b\r\n"x, y","say ""hi"""\n"two\r\nlines",\r\n')).toEqual([
      ['a', 'b'],
      ['x, y', 'say "hi"'],
      ['two\r\nlines', ''],
    ]);
    expect(parseCsv('a,b,')).toEqual([['a', 'b', '']]);
    expect(parseCsv('')).toEqual([]);
  });
  it('names the row of a syntax error', () => {
    expect(() => parseCsv('a\r\n"open')).toThrow(new CsvSyntaxError(2, 'a quoted field is never closed'));
    expect(() => parseCsv('a\r\nb"c')).toThrow(/row 2: a quote inside an unquoted field/);
    expect(() => parseCsv('"a"b')).toThrow(/row 1: text after a closing quote/);
    expect(() => parseCsv('a\nb\nc', { maxRecords: 2 })).toThrow(/more than 2 rows/);
  });
  it('writes what it reads back, whatever the text (formula starters aside)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.string({ unit: 'grapheme' }), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 6 }),
        (rows) => {
          const text = rows.map((r) => csvRecord(r)).join('');
          const back = parseCsv(text).map((r) => r.map(restoreFormula));
          expect(back).toEqual(rows.map((r) => r.map((v) => restoreFormula(neutraliseFormula(v)))));
        },
      ),
      { numRuns: 300 },
    );
  });
  it('neutralises formula injection on export', () => {
    for (const v of ['=1+1', '+1', '-1', '@SUM(A1)', '\tx', '\rx'])
      expect(csvRecord([v]).startsWith('"\'') || csvRecord([v]).startsWith("'")).toBe(true);
    expect(csvRecord(['=HYPERLINK("x")'])).toBe('"\'=HYPERLINK(""x"")"\r\n');
    expect(csvRecord(['plain', 'a@b.com'])).toBe('plain,a@b.com\r\n');
    expect(restoreFormula("'=x")).toBe('=x');
    expect(restoreFormula("'plain")).toBe("'plain");
  });
  it('reads lone-CR and mixed line ends, keeps empty rows, and quotes edge spaces on export', () => {
    expect(parseCsv('a\rb\n\n"c\rd",e\r\n')).toEqual([['a'], ['b'], [''], ['c\rd', 'e']]);
    expect(csvRecord([' x', 'y ', 'a,b', 'l\nf', 7, null])).toBe('" x","y ","a,b","l\nf",7,\r\n');
  });
  it('names the row of a field over the length limit', () => {
    expect(() => parseCsv('h\r\nok\r\n123456', { maxFieldLength: 5 })).toThrow(
      new CsvSyntaxError(3, 'a field is longer than 5 characters'),
    );
  });
});

describe('input rules', () => {
  it('accepts CIDRs v4 and v6 and explains refusals', () => {
    for (const ok of [
      '10.0.0.0/8',
      '192.168.1.0/24',
      '0.0.0.0/0',
      '10.1.2.3/32',
      '2001:db8::/32',
      '2001:db8:1::/48',
      '::/0',
      '::ffff:10.0.0.0/104',
      'fe80::1/128',
    ]) {
      expect(cidrProblem(ok)).toBeNull();
    }
    expect(cidrProblem('10.0.0.1/24')).toBe('host bits are set: did you mean 10.0.0.0/24?');
    expect(cidrProblem('2001:db8::1/64')).toBe('host bits are set: did you mean 2001:db8::/64?');
    expect(cidrProblem('10.0.0.0/33')).toBe('prefix length must be 0-32 for IPv4');
    expect(cidrProblem('10.0.0.0')).toMatch(/prefix length/);
    expect(cidrProblem('10.0.0.256/8')).toMatch(/not an IPv4 or IPv6 address/);
  });
  it('accepts mailbox and list addresses, refuses the rest', () => {
    for (const ok of [
      'a@example.com',
      'security-team@corp.example.co.uk',
      'first.last+e911@example.com',
      '-dash@example.com',
      "o'brien@example.ie",
    ])
      expect(emailProblem(ok)).toBeNull();
    for (const bad of ['', 'a', 'a@', '@example.com', 'a@localhost', 'a b@example.com', 'a@exa mple.com', `${'x'.repeat(65)}@example.com`])
      expect(emailProblem(bad)).not.toBeNull();
    expect(normalizeEmail(' Alice@Example.COM ')).toBe('Alice@example.com');
  });
  it('knows IANA time zones', () => {
    expect(isTimeZone('America/Los_Angeles')).toBe(true);
    expect(isTimeZone('Mars/Base')).toBe(false);
  });
});

describe('broker access rules', () => {
  it('lets a phone publish only its own phone-to-server topics', () => {
    for (const t of ['status', 'location', 'address/state', 'events', 'response/ping'])
      expect(phoneMayPublish('p1', `e911/v1/p1/${t}`)).toBe(true);
    for (const t of [
      'e911/v1/p2/events',
      'e911/v1/p1/address/set',
      'e911/v1/p1/locations/set',
      'e911/v1/p1/cmd/ping',
      'e911/v1/p1/events/x',
      'other/topic',
      'e911/v1/+/events',
    ]) {
      expect(phoneMayPublish('p1', t)).toBe(false);
    }
  });
  it('lets a phone subscribe only to its own server-to-phone topics, without wildcards across phones', () => {
    for (const f of [
      'e911/v1/p1/address/set',
      'e911/v1/p1/locations/set',
      'e911/v1/p1/config/set',
      'e911/v1/p1/cmd/+',
      'e911/v1/p1/cmd/ping',
    ])
      expect(phoneMaySubscribe('p1', f)).toBe(true);
    for (const f of [
      '#',
      'e911/v1/#',
      'e911/v1/+/address/set',
      'e911/v1/p2/address/set',
      'e911/v1/p1/#',
      'e911/v1/p1/events',
      '$share/g/e911/v1/p1/address/set',
      '$SYS/#',
    ]) {
      expect(phoneMaySubscribe('p1', f)).toBe(false);
    }
  });
  it('confines the server to e911/v1 and renders the same rules for Mosquitto', () => {
    expect(serverMayUse('$share/e911-server/e911/v1/+/events')).toBe(true);
    expect(serverMayUse('e911/v1/p1/address/set')).toBe(true);
    expect(serverMayUse('#')).toBe(false);
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    const acl = mosquittoAcl(['e911-server-a', 'e911-server-b']);
    expect(acl).toContain('user e911-server-a\ntopic readwrite e911/v1/#\nuser e911-server-b\ntopic readwrite e911/v1/#');
    expect(acl).toContain('pattern write e911/v1/%u/events');
    expect(acl).toContain('pattern read e911/v1/%u/cmd/+');
    expect(acl).not.toMatch(/pattern (read|write|readwrite) e911\/v1\/\+/);
  });
  it("binds the client id to the user name on every rendered Mosquitto listener, and reserves the server users' names", () => {
    const conf = mosquittoConfSnippet('/etc/e911', [{ port: 1883 }, { port: 8883, host: '10.0.0.1' }]);
    const lines = conf.split('\n');
    const listeners = lines.flatMap((l, i) => (l.startsWith('listener ') ? [i] : []));
    expect(listeners.map((i) => lines[i])).toEqual(['listener 1883', 'listener 8883 10.0.0.1']);
    // Each listener's own block (up to the next listener) carries the setting.
    listeners.forEach((start, k) => {
      expect(lines.slice(start, listeners[k + 1] ?? lines.length)).toContain('use_username_as_clientid true');
    });
    expect(serverMqttUser('host-8080')).toBe('e911-server-host-8080');
    expect(() => serverMqttUser('a/b')).toThrow();
    for (const id of ['e911-server', 'e911-server-main', 'E911-SERVER-x']) {
      expect(isReservedDeviceId(id)).toBe(true);
      expect(phoneMayPublish(id, `e911/v1/${id}/events`)).toBe(false);
    }
    expect(isReservedDeviceId('e911-phone-1')).toBe(false);
  });
  it("hashes passwords in Mosquitto's PBKDF2 format and verifies them", async () => {
    const h = hashPassword('s3cret');
    expect(h).toMatch(/^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    expect(await verifyPassword('s3cret', h)).toBe(true);
    expect(await verifyPassword('s3cret!', h)).toBe(false);
    expect(await verifyPassword('s3cret', 'garbage')).toBe(false);
  });
});

describe('notification content', () => {
  const event = (data: Record<string, unknown>, type = 'emergency-call'): StoredEvent => ({
    id: 'e-1',
    deviceId: 'desk-9',
    type,
    ts: '2026-07-04T18:00:00.000Z',
    receivedAt: '2026-07-04T18:00:01.000Z',
    userId: null,
    locationId: null,
    data,
  });
  it('reads the address from a PIDF-LO when the event carries only that', () => {
    const pidf =
      '<ca:civicAddress><ca:country>US</ca:country><ca:A1>NY</ca:A1><ca:A3>New York</ca:A3><ca:RD>Broadway</ca:RD><ca:HNO>1</ca:HNO><ca:FLR>3</ca:FLR><ca:NAM>A &amp; B</ca:NAM><ca:PC>10004</ca:PC></ca:civicAddress>';
    expect(civicFromPidf(pidf)).toEqual({
      country: 'US',
      A1: 'NY',
      A3: 'New York',
      RD: 'Broadway',
      HNO: '1',
      FLR: '3',
      NAM: 'A & B',
      PC: '10004',
    });
    const n = buildNotice({ event: event({ pidf }), user: null, location: null, provisionedCivic: null });
    expect(n.facts).toMatchObject({
      addressSource: 'sent',
      addressMissing: false,
      addressLines: ['A & B', '1 Broadway', 'Floor 3', 'New York, NY 10004', 'US'],
    });
  });
  it('names the Call-ID of the INVITE, which the PSAP record of the call carries', () => {
    const n = buildNotice({
      event: event({ callRef: 'r-1', sipCallId: 'abc.123@127.0.0.1' }),
      user: null,
      location: null,
      provisionedCivic: null,
    });
    expect(n.facts.sipCallId).toBe('abc.123@127.0.0.1');
    expect(n.text).toMatch(/^SIP Call-ID: +abc\.123@127\.0\.0\.1$/m);
    expect(n.html).toContain('<th align="left">SIP Call-ID</th><td>abc.123@127.0.0.1</td>');
  });
  it('says so when facts are missing, and never throws on odd data', () => {
    const n = buildNotice({
      event: event({ device: 'not an object', location: 42, time: null }),
      user: null,
      location: null,
      provisionedCivic: null,
    });
    expect(n.facts).toMatchObject({
      addressSource: 'none',
      addressMissing: true,
      callback: null,
      deviceIp: null,
      timeUtc: '2026-07-04T18:00:00.000Z',
      timeZone: 'UTC',
    });
    expect(n.text).toContain('Dispatchable address: NONE');
    expect(n.text).toContain('Callback number:      not reported');
    expect(n.text).toMatch(/^SIP Call-ID: +not reported$/m);
    expect(n.subject).toBe('EMERGENCY: 911 was called from desk-9');
    expect(n.sms).toContain('ADDRESS MISSING');
  });
  it("gives the time in the location's zone, daylight saving included", () => {
    expect(zonedTime('2026-07-04T18:00:00.000Z', 'America/New_York')).toBe('2026-07-04 14:00:00 EDT (America/New_York)');
    expect(zonedTime('2026-01-04T18:00:00.000Z', 'America/New_York')).toBe('2026-01-04 13:00:00 EST (America/New_York)');
  });
});
