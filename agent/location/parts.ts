// The network and location parts of the agent, built and started together so
// the composition root wires them in a few lines: the network monitor (netlink
// or simulated), lldpd, the DHCP hand-over reader, the HELD poller, the
// locations push, and the LocationService over them all.
import type { KeyObject } from 'node:crypto';
import type { Logger } from '../../provisioning/common/log.js';
import { named } from '../../provisioning/common/log.js';
import type { HostPaths } from '../../hal/host.js';
import type { Alerts } from '../../hal/handset.js';
import type { NetworkMonitor } from '../../hal/net/types.js';
import { NetworkWatcher, interfaceFilter } from '../../hal/net/watcher.js';
import { SimNetwork, hostStillSnapshot } from '../../hal/net/sim.js';
import { LldpAgent } from '../../hal/net/lldpd.js';
import type { EventPayload, EventType, LocationPayload } from '../../provisioning/protocol/messages.js';
import type { Store, StoredAddress } from '../store/store.js';
import type { NetworkConfig } from './config.js';
import { DhcpLocationReader } from './dhcp.js';
import { HeldPoller } from './held-poller.js';
import { LocationsBook, type LocationsPushOutcome } from './locations-book.js';
import { InlineLocationsVerifier, type LocationsPayload, type LocationsVerifier } from './locations-verifier.js';
import { LocationService } from './service.js';

export interface LocationPartsDeps {
  config: NetworkConfig;
  host: HostPaths;
  log: Logger;
  store: Store;
  deviceId: string;
  serverKey: KeyObject;
  /**
   * Verifies locations pushes: the agent passes its worker thread. Without one they are
   * verified inline, on this thread (tests, benchmarks, the location harness).
   */
  locationsVerifier?: LocationsVerifier;
  newEvent: (type: EventType, data: Record<string, unknown>) => EventPayload;
  wake: () => void;
  publishReport: (p: LocationPayload) => void;
  address: () => StoredAddress | null;
  /** The phone's display and LED; null logs the alert instead (no handset). */
  alerts: Alerts | null;
  /** A network monitor to use instead of the configured backend (tests, benchmarks). */
  network?: NetworkMonitor;
}

export class LocationParts {
  readonly network: NetworkMonitor;
  readonly lldp: LldpAgent | null;
  readonly dhcp: DhcpLocationReader | null;
  readonly held: HeldPoller | null;
  readonly book: LocationsBook;
  readonly service: LocationService;
  private lldpStarting: Promise<void> | null = null;

  constructor(private readonly deps: LocationPartsDeps) {
    const { config, host, log } = deps;
    const netLog = named(log, 'net');
    this.network =
      deps.network ??
      (config.backend === 'sim'
        ? new SimNetwork(hostStillSnapshot())
        : new NetworkWatcher({ host, log: netLog, interfaces: config.interfaces, debounceMs: config.debounceMs }));
    this.lldp = config.lldp.enabled
      ? new LldpAgent({
          host,
          log: named(log, 'lldp'),
          socketPath: config.lldp.socketPath,
          runDaemon: config.lldp.runDaemon,
          interfaces: config.interfaces.filter((i) => !i.endsWith('*')),
        })
      : null;
    this.dhcp = config.dhcp.enabled
      ? new DhcpLocationReader(host.dhcpLocationDir, interfaceFilter(config.interfaces), named(log, 'dhcp'))
      : null;
    this.held = config.held.url
      ? new HeldPoller({
          url: config.held.url,
          responseTimeMs: config.held.responseTimeMs,
          refreshMs: config.held.refreshMs,
          log: named(log, 'held'),
        })
      : null;
    // Each location's rules are compiled into the book's index as its part arrives, not all at once at the next check.
    this.book = new LocationsBook({
      store: deps.store,
      log: named(log, 'locations'),
      verifier: deps.locationsVerifier ?? new InlineLocationsVerifier({ deviceId: deps.deviceId, serverKey: deps.serverKey }),
    });
    const alertLog = named(log, 'alerts');
    this.service = new LocationService({
      log: named(log, 'location'),
      store: deps.store,
      network: this.network,
      lldp: this.lldp,
      dhcp: this.dhcp,
      held: this.held,
      address: deps.address,
      locations: () => this.book.view(),
      alerts: deps.alerts ?? { raise: (a) => alertLog.warn({ alert: a.id, lines: a.lines }, 'alert (no handset)'), clear: () => {} },
      newEvent: deps.newEvent,
      wake: deps.wake,
      publishReport: deps.publishReport,
      firstCheckMs: config.recommendations.firstCheckMs,
      checkEveryMs: config.recommendations.checkEveryMs,
    });
  }

  async start(): Promise<void> {
    const { log } = this.deps;
    // The stored locations, a part per turn (a 2 MiB document must not hold the keypad up).
    await this.book.load();
    await this.network.start();
    // LLDP-MED arrives when it arrives: the agent's start does not wait for lldpd.
    // A phone without lldpd still works; LLDP-MED is one location source among several.
    this.lldpStarting = this.lldp?.start().catch((err: Error) => log.warn({ err: err.message }, 'LLDP unavailable')) ?? null;
    await this.dhcp?.start().catch((err: Error) => log.warn({ err: err.message }, 'DHCP hand-over folder unavailable'));
    this.held?.start();
    this.service.start();
  }

  async stop(): Promise<void> {
    this.service.stop();
    this.held?.stop();
    await this.dhcp?.stop();
    // Stopped first so a start still waiting for lldpd's socket ends now, not after its timeouts.
    await this.lldp?.stop();
    await this.lldpStarting;
    await this.network.stop();
  }

  /** A locations/set payload from the server: verified off the main thread, stored a part per turn. */
  async handleLocationsPush(payload: LocationsPayload): Promise<LocationsPushOutcome> {
    const outcome = await this.book.handlePush(payload);
    if (outcome.result === 'applied') this.service.locationsChanged();
    return outcome;
  }

  status(): Record<string, unknown> {
    const snap = this.network.current();
    const best = this.service.best();
    return {
      best: best ? { source: best.source, method: best.method, kind: best.kind, ageMs: best.ageMs, dispatchable: best.dispatchable } : null,
      // Not list(): that reads every location for the menu.
      recommendation: this.service.listStatus(),
      addresses: snap ? snap.interfaces.flatMap((i) => i.addresses.map((a) => `${i.name} ${a.address}/${a.prefix}`)) : [],
      gateway4: snap?.gateway4 ?? null,
      lldpNeighbors: this.lldp?.neighbors().map((n) => `${n.iface} ${n.chassisId} ${n.portId}`) ?? [],
      held: this.held ? { answer: this.held.current() !== null, lastError: this.held.lastError } : null,
    };
  }
}
