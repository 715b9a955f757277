// e911ctl location against a real control socket and a real LocationService
// (SQLite store, a fake LLDP source whose switch disagrees with the provisioned
// address, ask-user policy): the list with every candidate, source, method, age
// and ELIN; `location use` answering for the user; usage errors.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer } from '../../../agent/control/control-server.js';
import { EXIT, main } from '../../../agent/cli/e911ctl.js';
import { registerLocationControl } from '../../../agent/location/control.js';
import type { LocationService } from '../../../agent/location/service.js';
import { Store, type StoredAddress } from '../../../agent/store/store.js';
import type { LldpNeighbor } from '../../../hal/net/lldp-json.js';
import { silentLog } from '../../helpers/log.js';
import { sampleAddress } from '../../helpers/address.js';
import { quietLocationService } from '../../helpers/location-service.js';

class OneSwitch extends EventEmitter<{ neighbors: [LldpNeighbor[]] }> {
  neighbors(): LldpNeighbor[] {
    return [
      {
        iface: 'eth0',
        rid: '1',
        chassisId: 'aa:bb:cc:00:00:01',
        chassisIdType: 'mac',
        portId: 'ge1',
        portIdType: 'ifname',
        portDescr: null,
        sysName: 'sw',
        ttl: 120,
        med: {
          deviceType: null,
          civic: [
            ['country', 'US'],
            ['country-subdivision', 'CA'],
            ['city', 'San Jose'],
            ['street', 'Tasman Dr'],
            ['number', '170'],
            ['zip', '95134'],
            ['building', 'B4'],
            ['floor', '3'],
          ],
          elin: '4085550123',
          coordinates: { latitude: 37.41, longitude: -121.95, altitude: 12, altitudeUnit: 'm', datum: 'WGS84' } as never,
          policies: [],
        },
      },
    ];
  }
}

function sink() {
  let text = '';
  const w = new Writable({
    write(c, _e, cb) {
      text += c.toString();
      cb();
    },
  });
  return { w, text: () => text };
}

describe('e911ctl location', () => {
  let dir: string;
  let socket: string;
  let server: ControlServer;
  let store: Store;
  let svc: LocationService;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911ctl-loc-'));
    socket = path.join(dir, 'control.sock');
    store = new Store({ dataDir: path.join(dir, 'db'), log: silentLog() });
    const doc = sampleAddress({ locationPolicy: 'ask-user' });
    const address: StoredAddress = { doc, version: 1, hash: 'h', signature: 's', receivedAt: doc.issuedAt, appliedAt: doc.issuedAt };
    ({ svc } = await quietLocationService({ store, address, ipv4: '10.9.0.5', deviceId: 'phone-1', lldp: new OneSwitch() }));
    svc.start();
    server = new ControlServer(socket, silentLog());
    registerLocationControl(server, () => svc);
    await server.start();
  });
  afterAll(async () => {
    await server.stop();
    svc.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (...args: string[]) => {
    const out = sink();
    const err = sink();
    const code = await main(['--socket', socket, ...args], {}, out.w, err.w);
    return { code, out: out.text(), err: err.text() };
  };

  it('list: every candidate with source, method, age and the ELIN; the disagreement and what 911 sends', async () => {
    const t = await run('location', 'list');
    expect(t.code).toBe(EXIT.ok);
    expect(t.out).toContain('ELIN from the switch: 4085550123');
    expect(t.out).toContain('policy when the network disagrees: ask-user');
    expect(t.out).toMatch(/LOCATION DISAGREEMENT \(street, number, building, floor differ\)/);
    expect(t.out).toContain('not picked yet: e911ctl location use network|provisioned');
    const cands = t.out.split('\n').filter((l) => /^\s+\d+\. /.test(l));
    expect(cands).toHaveLength(3);
    expect(cands[0]).toMatch(/1\. lldp-med\s+LLDP-MED\s+civic\s+age \S+ m?s\s+ELIN 4085550123/);
    expect(cands[1]).toMatch(/2\. provisioned Manual\s+civic\s+age /);
    expect(cands[2]).toMatch(/3\. lldp-med\s+LLDP-MED\s+geodetic\s+age .*\(not dispatchable\)\s+ELIN 4085550123/);
    const j = JSON.parse((await run('--json', 'location')).out);
    expect(j.result.candidates.map((c: { source: string; kind: string }) => `${c.source}/${c.kind}`)).toEqual([
      'lldp-med/civic',
      'provisioned/civic',
      'lldp-med/geodetic',
    ]);
  });

  it('use provisioned: the provisioned address goes first; a wrong word is a usage error', async () => {
    const t = await run('location', 'use', 'provisioned');
    expect(t.code).toBe(EXIT.ok);
    expect(t.out.trim()).toBe('picked the provisioned address: a 911 call sends provisioned first');
    expect(svc.callLocations().first!.source).toBe('provisioned');
    expect((await run('location', 'list')).out).toContain('(picked on the phone: provisioned)');
    expect((await run('location', 'use', 'switch')).code).toBe(EXIT.usage);
  });
});
