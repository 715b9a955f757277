// The notification target policy's address rules (the SSRF suite in test/security sends real
// requests; this pins the ranges and the spellings of one address).
import { describe, expect, it } from 'vitest';
import { TargetPolicy } from '../../provisioning/server/notify/targets.js';
import { ConfigError } from '../../agent/errors.js';

describe('TargetPolicy', () => {
  const policy = new TargetPolicy();

  it('refuses the non-public ranges and passes public addresses', () => {
    const refused = [
      '127.0.0.1',
      '10.1.2.3',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.169.254',
      '100.64.1.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      'fc00::1',
      'ff02::1',
    ];
    for (const a of refused) expect(policy.refusal('h', a), a).not.toBeNull();
    for (const a of ['8.8.8.8', '172.32.0.1', '192.169.0.1', '100.128.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8'])
      expect(policy.refusal('h', a), a).toBeNull();
  });

  it('sees an IPv4 address inside IPv6 (mapped, NAT64, 6to4), however written', () => {
    for (const a of [
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '0:0:0:0:0:ffff:7f00:1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
      '64:ff9b::10.0.0.1',
      '2002:7f00:1::1',
      '2002:c0a8:101::',
    ]) {
      expect(policy.refusal('h', a), a).not.toBeNull();
    }
    // The same translations of public addresses pass.
    for (const a of ['64:ff9b::8.8.8.8', '2002:808:808::1']) expect(policy.refusal('h', a), a).toBeNull();
  });

  it('checks literal hosts of a URL being saved, whatever the IPv4 spelling, and leaves names to send time', () => {
    for (const u of [
      'http://127.0.0.1/',
      'http://2130706433/',
      'http://0x7f.0.0.1/',
      'http://017700000001/',
      'https://[::1]:8443/',
      'http://[::ffff:127.0.0.1]/',
    ])
      expect(policy.urlRefusal(u), u).not.toBeNull();
    expect(policy.urlRefusal('http://localhost/')).toBeNull();
    expect(policy.urlRefusal('https://sms.example.com/send')).toBeNull();
  });

  it('allows named hosts and networks only', () => {
    const p = new TargetPolicy({ allow: ['Relay.Internal.', '10.20.0.0/16', 'fd00::/8', '192.168.1.5'] });
    expect(p.refusal('relay.internal', '10.9.9.9')).toBeNull();
    expect(p.refusal('other.internal', '10.9.9.9')).not.toBeNull();
    expect(p.refusal('x', '10.20.3.4')).toBeNull();
    expect(p.refusal('x', '10.21.3.4')).not.toBeNull();
    expect(p.refusal('x', 'fd12::1')).toBeNull();
    expect(p.refusal('x', '192.168.1.5')).toBeNull();
    expect(p.refusal('x', '192.168.1.6')).not.toBeNull();
    expect(p.refusal('x', '127.0.0.1')).not.toBeNull();
  });

  it('names a bad allow entry', () => {
    expect(() => new TargetPolicy({ allow: ['10.0.0.0/33'] })).toThrow(ConfigError);
    expect(() => new TargetPolicy({ allow: ['http://x/'] })).toThrow(/give a host name, an address or a network/);
  });

  it('its lookup keeps only allowed addresses and refuses a name with none', async () => {
    const answers = [
      { address: '127.0.0.1', family: 4 },
      { address: '93.184.215.14', family: 4 },
    ];
    const p = new TargetPolicy({
      lookup: ((_h: string, _o: unknown, cb: (e: null, a: typeof answers) => void) => cb(null, answers)) as never,
    });
    const lookup = p.lookupFor('mixed.example');
    const all = await new Promise((resolve, reject) =>
      lookup('mixed.example', { all: true }, (err, a) => (err ? reject(err) : resolve(a))),
    );
    expect(all).toEqual([{ address: '93.184.215.14', family: 4 }]);
    answers.pop();
    await expect(
      new Promise((resolve, reject) => lookup('mixed.example', {}, (err, a) => (err ? reject(err) : resolve(a)))),
    ).rejects.toThrow(/^mixed\.example resolves to a loopback address: /);
  });
});
