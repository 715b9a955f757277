// What a notice says to the people who know the phones: the account, the extension, the
// directory name beside the caller ID, the number sent when it is not the phone's own, the
// caller's language; in the site's language; a 911 flagged high importance, a 933 not.
import { describe, expect, it } from 'vitest';
import { buildNotice, type NoticeContext } from '../../provisioning/server/notify/message.js';
import { catalogue, noticeLanguage, ROW_KEYS, type NoticeLanguage } from '../../provisioning/server/notify/i18n.js';
import type { Location, StoredEvent, User } from '../../provisioning/server/db/repo.js';

const user: User = {
  id: 1,
  username: 'asmith',
  displayName: 'Alice Smith',
  extension: '2001',
  locationId: 1,
  callback: '+14085550100',
  language: 'es-US',
  mobile: null,
  ownAddress: null,
  recommendations: false,
  emails: [],
  deviceIds: ['desk-9'],
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
};

const location = (language: string): Location => ({
  id: 1,
  code: 'SJC-A',
  name: 'San Jose A',
  address: { country: 'US', houseNumber: '100', street: 'Main St', city: 'San Jose', state: 'CA', postalCode: '95110' },
  timeZone: 'America/Los_Angeles',
  ipGroups: [],
  switchPorts: [],
  adminEmails: [],
  smsNumbers: [],
  callNumbers: [],
  language,
  civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', STS: 'St', HNO: '100', PC: '95110' },
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
});

function event(type: 'emergency-call' | 'test-call', data: Record<string, unknown>): StoredEvent {
  return {
    id: `ev-${type}`,
    deviceId: 'desk-9',
    type,
    ts: '2026-07-04T18:00:00.000Z',
    receivedAt: '2026-07-04T18:00:01.000Z',
    userId: 1,
    locationId: 1,
    data: {
      numberDialed: type === 'test-call' ? '933' : '911',
      callback: '+14085550100',
      displayName: 'Front Desk',
      language: 'es-US',
      civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', STS: 'St', HNO: '100', PC: '95110' },
      ...data,
    },
  };
}

const ctx = (e: StoredEvent, lang = 'en'): NoticeContext => ({
  event: e,
  user,
  location: location(lang),
  provisionedCivic: null,
  accountName: 'Example Corp PBX',
});

const line = (text: string, label: string) => new RegExp(`^${label}: +(.*)$`, 'm').exec(text)?.[1];

describe('the notice admins know', () => {
  it('911: account, extension, directory name, caller ID with its name, the language sent; high importance', () => {
    const n = buildNotice(ctx(event('emergency-call', {})));
    expect(line(n.text, 'Account')).toBe('Example Corp PBX');
    expect(line(n.text, 'Extension')).toBe('2001');
    expect(line(n.text, 'Directory name')).toBe('Alice Smith');
    expect(line(n.text, 'Caller ID')).toBe('+14085550100 "Front Desk"');
    expect(line(n.text, "Caller's language")).toBe('Spanish (United States) (es-US), sent to the PSAP');
    // The phone's own number went out: nothing to point out.
    expect(n.text).not.toContain('Caller ID sent');
    expect(n.headers).toEqual({ Importance: 'High', 'X-Priority': '1' });
    expect(n.subject).toBe('EMERGENCY: 911 was called from Front Desk at SJC-A');
  });

  it('says "Caller ID sent" when the call carried another number than the phone\'s own (an ELIN)', () => {
    const n = buildNotice(ctx(event('emergency-call', { callback: '+14085550199', callbackSource: 'elin', elin: '4085550199' })));
    expect(line(n.text, 'Caller ID sent')).toBe("+14085550199, not the phone's own number +14085550100 (the switch's ELIN was sent)");
    expect(n.facts.callerIdSent).toEqual({ sent: '+14085550199', own: '+14085550100' });
  });

  it('933: "test call" in the subject and the first line, which names who dialed; no high-importance flag', () => {
    const n = buildNotice(ctx(event('test-call', {})));
    expect(n.subject).toMatch(/test call/);
    const first = n.text.split('\n')[0]!;
    expect(first).toMatch(/TEST CALL/);
    expect(first).toContain('Front Desk dialed the 933 test number at SJC-A');
    expect(n.headers).toEqual({});
  });

  it('an event from an older phone (no language sent): the directory language, not claimed as sent', () => {
    const n = buildNotice(ctx(event('emergency-call', { language: undefined })));
    expect(line(n.text, "Caller's language")).toBe('Spanish (United States) (es-US)');
  });

  it("is written in the site's language: Spanish, French; English where there is no translation", () => {
    const es = buildNotice(ctx(event('emergency-call', {}), 'es-US'));
    expect(es.language).toBe('es');
    expect(es.subject).toBe('EMERGENCIA: se llamó al 911 desde Front Desk en SJC-A');
    expect(line(es.text, 'Extensión')).toBe('2001');
    expect(line(es.text, 'Idioma de quien llamó')).toBe('español (Estados Unidos) (es-US), enviado al PSAP');
    expect(es.sms).toMatch(
      /^LLAMADA AL 911 de Front Desk en SJC-A\. 100 Main St, San Jose, CA 95110, US\. Devolver llamada al \+14085550100\./,
    );

    const fr = buildNotice(ctx(event('test-call', {}), 'fr-CA'));
    expect(fr.language).toBe('fr');
    expect(fr.subject).toContain('appel de test');
    expect(fr.text.split('\n')[0]).toContain('Front Desk a composé le numéro de test 933 à SJC-A');
    expect(line(fr.text, 'Poste')).toBe('2001');

    const de = buildNotice(ctx(event('emergency-call', {}), 'de'));
    expect(de.language).toBe('en');
    expect(de.subject).toBe('EMERGENCY: 911 was called from Front Desk at SJC-A');
  });

  it('every language labels every row, and no two rows alike', () => {
    for (const lang of ['en', 'es', 'fr'] as NoticeLanguage[]) {
      const rows = catalogue(lang).rows;
      expect(Object.keys(rows).sort()).toEqual([...ROW_KEYS].sort());
      expect(new Set(Object.values(rows)).size).toBe(ROW_KEYS.length);
    }
    expect(noticeLanguage('fr-CA')).toBe('fr');
    expect(noticeLanguage('ES')).toBe('es');
    expect(noticeLanguage(null)).toBe('en');
  });
});
