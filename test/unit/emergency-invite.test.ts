import { describe, expect, it } from 'vitest';
import { fromHeader, inviteContent, paiHeader, prepareInvite } from '../../agent/emergency/invite.js';
import { emergencyTarget, needsResolution, parseRoute, withAddress } from '../../agent/emergency/sip-uri.js';
import { PidfTemplate } from '../../provisioning/pidf/pidf.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../agent/emergency/config.js';
import { parseConfig } from '../../agent/config.js';

describe('routes and targets', () => {
  it('parses routes with ports, parameters, IPv6 and a user part', () => {
    expect(parseRoute('primary', 'sip:192.0.2.1:5070;transport=tcp')).toMatchObject({
      hostPort: '192.0.2.1:5070',
      host: '192.0.2.1',
      params: ';transport=tcp',
      proxy: 'sip:192.0.2.1:5070;transport=tcp;lr',
    });
    expect(parseRoute('secondary', 'sip:[2001:db8::1]:5060')).toMatchObject({ host: '[2001:db8::1]', hostPort: '[2001:db8::1]:5060' });
    expect(parseRoute('fallback', 'sip:sos@esrp.example;lr')).toMatchObject({ hostPort: 'esrp.example', proxy: 'sip:esrp.example;lr' });
    expect(() => parseRoute('primary', 'http://x')).toThrow(/not a SIP URI/);
  });

  it('targets: sip:911@route (scheme and parameters kept) or the bracketed URN', () => {
    const r = parseRoute('primary', 'sips:psap.example:5061;transport=tls');
    expect(emergencyTarget(r, '911', undefined)).toBe('sips:911@psap.example:5061;transport=tls');
    expect(emergencyTarget(r, '911', 'urn:service:sos')).toBe('<urn:service:sos>');
  });

  it('resolves names except TLS ones, and IPv6 answers are bracketed', () => {
    expect(needsResolution(parseRoute('primary', 'sip:psap.example'))).toBe(true);
    expect(needsResolution(parseRoute('primary', 'sip:psap.example;transport=tls'))).toBe(false);
    expect(needsResolution(parseRoute('primary', 'sip:10.1.1.1'))).toBe(false);
    expect(withAddress(parseRoute('primary', 'sip:psap.example:5070;transport=tcp'), '2001:db8::5')).toMatchObject({
      hostPort: '[2001:db8::5]:5070',
      proxy: 'sip:[2001:db8::5]:5070;transport=tcp;lr',
    });
  });
});

describe('caller identity and the INVITE content', () => {
  const id = { callback: '+14085550100', displayName: 'Front "Desk" \\ 1', domain: 'pbx.example' };

  it('From and P-Asserted-Identity carry the callback number, the display name quoted', () => {
    expect(fromHeader(id)).toBe('"Front \\"Desk\\" \\\\ 1" <sip:+14085550100@pbx.example;user=phone>');
    expect(paiHeader(id)!.value).toBe('"Front \\"Desk\\" \\\\ 1" <sip:+14085550100@pbx.example;user=phone>, <tel:+14085550100>');
    expect(paiHeader({ ...id, callback: null })).toBeNull();
  });

  it('a fresh Content-ID per call, Geolocation pointing at it, the static headers after', () => {
    const pidf = new PidfTemplate(
      { civic: { country: 'US', A1: 'CA' }, method: 'Manual' },
      { entity: 'tel:+14085550100', deviceId: 'mac:00d01e123456', providedBy: { name: 'x' }, retransmissionAllowed: true },
    );
    const p = prepareInvite({ identity: id, pidf, extraHeaders: [{ name: 'X-A', value: '1' }] });
    const a = inviteContent(p, new Date());
    const b = inviteContent(p, new Date());
    expect(a.contentId).not.toBe(b.contentId);
    expect(a.headers.map((h) => h.name)).toEqual(['Geolocation', 'Geolocation-Routing', 'Priority', 'P-Asserted-Identity', 'X-A']);
    expect(a.headers[0]!.value).toBe(`<cid:${a.contentId}>`);
    expect(a.parts[0]!.headers).toEqual([{ name: 'Content-ID', value: `<${a.contentId}>` }]);
  });
});

describe('config sections', () => {
  it('defaults: 911 and 933, prefix 9, 2 s failover, 30 min window, hold', () => {
    const e = emergencySchema.parse(undefined);
    expect(e).toMatchObject({
      outsideLinePrefix: '9',
      failoverMs: 2000,
      suppressMinutes: 30,
      activeCallPolicy: 'hold',
      targetForm: 'number',
      routes: {},
    });
    expect(e.numbers.map((n) => [n.digits, n.kind])).toEqual([
      ['911', 'emergency'],
      ['933', 'test'],
    ]);
    expect(dialPlanSchema.parse(undefined)).toEqual({ rules: [], interDigitMs: 4000 });
    expect(sipSchema.parse(undefined)).toMatchObject({ transport: 'udp', port: 5060, maxCalls: 4 });
  });

  it('refuses header injection, bad routes and bad rules; env overrides set the routes', () => {
    expect(() => emergencySchema.parse({ extraHeaders: [{ name: 'X-A', value: 'a\r\nVia: evil' }] })).toThrow();
    expect(() => emergencySchema.parse({ routes: { primary: 'psap.example' } })).toThrow();
    expect(() => dialPlanSchema.parse({ rules: [{ match: '(', replace: '' }] })).toThrow();
    const cfg = parseConfig(
      { deviceId: 'p1', serverPublicKey: 'A'.repeat(43), broker: { urls: ['mqtt://127.0.0.1:1883'] } },
      { E911_EMERGENCY_PRIMARY: 'sip:10.0.0.1:5060', E911_SIP_PORT: '5070' },
    );
    expect(cfg.emergency.routes.primary).toBe('sip:10.0.0.1:5060');
    expect(cfg.sip.port).toBe(5070);
  });
});
