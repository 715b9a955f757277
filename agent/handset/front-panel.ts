// Everything the person at the phone and the technician see, built in one place
// for the composition root: the handset backend and its UI, the emergency-services
// notice, 933 diagnostics, and the system inventory for `e911ctl status`.
import type { KeyObject } from 'node:crypto';
import type { Logger } from '../../provisioning/common/log.js';
import { named } from '../../provisioning/common/log.js';
import { ControlError } from '../errors.js';
import type { Store, StoredAddress } from '../store/store.js';
import type { EventFactory } from '../events/events.js';
import type { ControlServer } from '../control/control-server.js';
import { diagnosticsReportSchema, issuesLine } from '../control/commands.js';
import type { HostPaths } from '../../hal/host.js';
import type { Handset } from '../../hal/handset.js';
import { createHandset } from '../../hal/mcu/index.js';
import { gatherInWorker, InventoryCache, type InventoryWorkerScript } from '../../hal/inventory/inventory.js';
import { Diagnostics } from '../diagnostics/diagnostics.js';
import { reportDisplayLines } from '../diagnostics/format.js';
import { clockSync, HostNetworkProbe } from '../diagnostics/probes.js';
import { sipOptionsPing } from '../diagnostics/sip-options.js';
import type { DiagnosticsReport, EmergencyPath, LinkView, NetworkProbe } from '../diagnostics/types.js';
import type { DiagnosticsConfig, HandsetConfig } from './config.js';
import { HandsetUi, type KeypadDialer } from './handset-ui.js';
import { EmergencyNotice, type NoticeStore } from './notice.js';

export type FrontPanelStore = NoticeStore & Pick<Store, 'lastDiagnostics' | 'saveDiagnostics'>;

export interface FrontPanelDeps {
  /** A part here failed while running (the handset's port went away, the inventory failed): the agent reports it. */
  onPartFailed?: (part: 'handset' | 'inventory', err: Error) => void;
  handsetConfig: HandsetConfig;
  diagnosticsConfig: DiagnosticsConfig;
  deviceId: string;
  agentVersion: string;
  serverKey: KeyObject;
  log: Logger;
  host: HostPaths;
  /** The agent's store, or a stand-in while it is away (the keypad dials 911 without it). */
  store: FrontPanelStore;
  newEvent: EventFactory;
  /** Sends what was just queued in the outbox. */
  wake: () => void;
  address: () => StoredAddress | null;
  emergency: () => (EmergencyPath & KeypadDialer) | null;
  link: () => LinkView;
  /** The emergency path's test number (933 by default). */
  testNumber?: string;
  now?: () => Date;
  /** Tests and the simulator hand in a handset; otherwise the configured backend is built. */
  handset?: Handset | null;
  network?: NetworkProbe;
  /** How the inventory worker gets systeminformation (node_modules, or carried in the single executable). */
  /** A function is called at each gathering: the bundle's code string (312 KB) is made only then. */
  inventoryWorker: InventoryWorkerScript | (() => InventoryWorkerScript);
}

export class FrontPanel {
  readonly notice: EmergencyNotice;
  readonly diagnostics: Diagnostics;
  readonly inventory: InventoryCache;
  private handset: Handset | null = null;
  private ui: HandsetUi | null = null;

  constructor(private readonly deps: FrontPanelDeps) {
    this.notice = new EmergencyNotice({
      store: deps.store,
      log: named(deps.log, 'notice'),
      newEvent: deps.newEvent,
      wake: deps.wake,
      ...(deps.now ? { now: deps.now } : {}),
      onChange: () => this.ui?.refreshNotice(),
    });
    const d = deps.diagnosticsConfig;
    this.diagnostics = new Diagnostics({
      deviceId: deps.deviceId,
      serverKey: deps.serverKey,
      log: named(deps.log, 'diagnostics'),
      ...(deps.now ? { now: deps.now } : {}),
      address: deps.address,
      network: deps.network ?? new HostNetworkProbe(deps.host),
      clock: () => clockSync(deps.host),
      link: deps.link,
      emergency: deps.emergency,
      handset: () => this.handset?.status() ?? null,
      optionsPing: (uri) => sipOptionsPing(uri, d.optionsTimeoutMs),
      publish: (r) => this.publish(r),
      addressMaxAgeDays: d.addressMaxAgeDays,
      outboxWarnAbove: d.outboxWarnAbove,
      testCallTimeoutMs: d.testCallTimeoutMs,
      ...(deps.testNumber ? { testNumber: deps.testNumber } : {}),
    });
    this.inventory = new InventoryCache({
      log: named(deps.log, 'inventory'),
      delayMs: d.inventoryDelayMs,
      gather: () => gatherInWorker(typeof deps.inventoryWorker === 'function' ? deps.inventoryWorker() : deps.inventoryWorker),
      onFailure: (err) => deps.onPartFailed?.('inventory', err),
    });
  }

  /** After the emergency path: the keypad can dial 911 from here on. */
  async start(): Promise<void> {
    const log = named(this.deps.log, 'handset');
    this.notice.sync(this.deps.address());
    try {
      this.handset =
        this.deps.handset !== undefined
          ? this.deps.handset
          : await createHandset(
              this.deps.handsetConfig.backend === 'serial'
                ? { backend: 'serial', path: this.deps.handsetConfig.path, baudRate: this.deps.handsetConfig.baudRate }
                : { backend: this.deps.handsetConfig.backend },
              { log, agentVersion: this.deps.agentVersion },
            );
    } catch (err) {
      // No keypad is bad; no agent (no notifications, no e911ctl) would be worse.
      log.error({ err, backend: this.deps.handsetConfig.backend }, 'handset backend failed to load: no keypad or display');
      this.handset = null;
    }
    if (this.handset) {
      this.ui = new HandsetUi({
        handset: this.handset,
        log,
        notice: this.notice,
        address: this.deps.address,
        dialer: this.deps.emergency,
        onTestCall: (callRef) => void this.runDiagnostics('keypad', { follow: callRef }),
        deviceLabel: this.deps.deviceId,
      });
      this.ui.start();
      // The backend reopens its port by itself; the agent reports each loss.
      this.handset.onLinkLost?.((reason) => this.deps.onPartFailed?.('handset', new Error(reason)));
      await this.handset.start();
    }
    this.inventory.start();
  }

  async stop(): Promise<void> {
    this.inventory.stop();
    this.ui?.stop();
    this.ui = null;
    await this.handset?.stop();
  }

  /** A new address was applied: a new notice, and the idle screen shows it. */
  addressChanged(a: StoredAddress): void {
    this.notice.sync(a);
  }

  /** The Alerts of the phone's display, for other parts (null without a handset). */
  get alerts(): HandsetUi | null {
    return this.ui;
  }

  status(): Record<string, unknown> {
    return {
      handset: this.handset?.status() ?? { backend: 'none' },
      notice: this.notice.state() ?? { state: 'not shown yet' },
      inventory: this.inventory.current(),
    };
  }

  runDiagnostics(
    trigger: 'keypad' | 'cli' | 'server',
    testCall: Parameters<Diagnostics['run']>[0]['testCall'],
  ): Promise<DiagnosticsReport> {
    if (!this.diagnostics.busy) this.ui?.diagnosticsRunning();
    return this.diagnostics.run({ trigger, testCall });
  }

  registerControl(control: ControlServer): void {
    control.register('diag', async (args) => {
      if (args.last === true) {
        // The stored report is the JSON this agent wrote; one that no longer fits the schema is an error, not a guess.
        const stored = diagnosticsReportSchema.nullable().safeParse(this.deps.store.lastDiagnostics());
        if (!stored.success)
          throw new ControlError('bad-report', `the last diagnostics report on file is not readable: ${issuesLine(stored.error)}`);
        return stored.data;
      }
      return this.runDiagnostics(
        'cli',
        args.noCall === true ? { none: true } : { place: true, hangUpWhenAnswered: args.keepCall !== true },
      );
    });
  }

  private publish(r: DiagnosticsReport): void {
    this.deps.store.saveDiagnostics(r, this.deps.newEvent('diagnostics', { ...r }));
    this.deps.wake();
    this.ui?.showDiagnostics(reportDisplayLines(r), r.overall === 'fail');
  }
}
