// A LocationService on a simulated network (eth0 with one IPv4 address), its checks an hour
// apart so that only what the caller does moves it, alerts and reports dropped: for the tests
// and the bench that drive one service directly.
import { LocationService } from '../../agent/location/service.js';
import { eventFactory } from '../../agent/events/events.js';
import type { Store, StoredAddress } from '../../agent/store/store.js';
import { SimNetwork } from '../../hal/net/sim.js';
import { silentLog } from './log.js';

type Deps = ConstructorParameters<typeof LocationService>[0];

export async function quietLocationService(o: {
  store: Store;
  address: StoredAddress;
  ipv4: string;
  deviceId: string;
  lldp?: Deps['lldp'];
}): Promise<{ svc: LocationService; net: SimNetwork }> {
  const net = new SimNetwork({
    interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', up: true, addresses: [{ family: 'IPv4', address: o.ipv4, prefix: 24 }] }],
    gateway4: null,
    gateway6: null,
    dns: [],
  });
  await net.start();
  const svc = new LocationService({
    log: silentLog(),
    store: o.store,
    network: net,
    lldp: o.lldp ?? null,
    dhcp: null,
    held: null,
    address: () => o.address,
    locations: () => null,
    alerts: { raise: () => {}, clear: () => {} },
    newEvent: eventFactory(o.deviceId),
    wake: () => {},
    publishReport: () => {},
    firstCheckMs: 3_600_000,
    checkEveryMs: 3_600_000,
  });
  return { svc, net };
}
