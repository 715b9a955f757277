// The phone's local store: SQLite in WAL mode. Holds the applied address and its
// history, the outbox of events for the server, and settings. Writes only when
// something changed, to spare the phone's flash.
// Over 400 lines: one SQLite connection and its prepared statements, for every table the
// agent keeps; split, the statements would be prepared apart from the transactions using them.
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../../provisioning/common/log.js';
import { StoreAccessError, StoreCorruptError, StoreFullError, StoreTooNewError, classifyStoreError } from '../errors.js';
import { MIGRATIONS } from './migrations.js';
import { migrate, SchemaTooNewError, statementCache, type Migration } from '../../provisioning/common/sqlite.js';
import type { AddressDocument } from '../../provisioning/protocol/address.js';
import { PROTECTED_EVENT_TYPES, type EventPayload } from '../../provisioning/protocol/messages.js';
import { ReplayFloor, type FloorKind } from './replay-floor.js';
import { WalCheckpointer, type CheckpointStats, type CheckpointWorkerScript } from './wal-checkpointer.js';

export interface StoredAddress {
  doc: AddressDocument;
  version: number;
  hash: string;
  signature: string;
  receivedAt: string;
  appliedAt: string;
}

export interface OutboxRow {
  seq: number;
  id: string;
  type: string;
  payload: string;
}

export interface StoreIncident {
  at: string;
  reason: string;
  /** Where the unreadable database was moved; nothing is deleted. */
  keptAs: string;
}

export interface StoreHealth {
  path: string;
  schemaVersion: number;
  journalMode: string;
  incident: StoreIncident | null;
  writes: number;
  /** Who checkpoints the WAL: null when SQLite does it on this connection (no checkpoint worker). */
  checkpoints: CheckpointStats | null;
}

export interface StoreOptions {
  dataDir: string;
  log: Logger;
  now?: () => Date;
  /** Outbox bound; protected events (emergency, test call) are kept beyond it. */
  outboxMax?: number;
  migrations?: readonly Migration[];
  /** For tests and the ARM bundle: an explicit path to better_sqlite3.node. */
  nativeBinding?: string;
  /**
   * Keep everything in memory, nothing on disk: for an agent whose database was
   * written by a newer agent (kept untouched; this one runs without it).
   */
  memory?: boolean;
  /**
   * Checkpoints in a worker thread (the agent): auto-checkpoint is off on this
   * connection, so no write of the main thread runs one. Without it SQLite
   * checkpoints inside the commit that crosses 1000 WAL pages.
   */
  checkpoints?: { script: CheckpointWorkerScript | (() => CheckpointWorkerScript); delayMs?: number; idleMs?: number };
}

/** SQLite's own auto-checkpoint (pages), put back when the checkpoint worker fails. */
const SQLITE_AUTOCHECKPOINT = 1000;

export const DB_FILE = 'agent.db';
const HISTORY_KEEP = 100;
/** Outbox rows kept in memory for the drainer (takeInserted): a few per wake are the use; while offline they would only hold memory. */
const INSERTED_KEEP = 64;

/** The emergency-services notice as stored: what was shown, and whether the user acknowledged it. */
export interface NoticeState {
  /** The address the notice showed; null when it showed that none is on file. */
  addressHash: string | null;
  addressVersion: number | null;
  shownAt: string;
  acknowledgedAt: string | null;
  acknowledgedVia: string | null;
}

export class Store {
  readonly path: string;
  /** Whether what it holds is on disk (false: kept in memory, lost with the process). */
  get onDisk(): boolean {
    return this.path !== ':memory:';
  }
  readonly incident: StoreIncident | null;
  /** Emergency events begun before a crash that this open moved to the outbox. */
  readonly recoveredEmergencyEvents: number;
  /** Write transactions committed since open: the idle-write benchmark reads it. */
  writes = 0;
  private readonly db: Database.Database;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly outboxMax: number;
  private outboxCount: number;
  private readonly stmts;
  /** Statements used outside the constructor's set, prepared on first use. */
  private readonly stmt: (sql: string) => Database.Statement;
  /** Highest versions applied, in a file that outlives a reset of a corrupt store. */
  private readonly floor: ReplayFloor;
  private readonly checkpointer: WalCheckpointer | null = null;
  /**
   * Outbox rows committed since open, with their serial, oldest first: the drainer takes the
   * ones inserted since it last read the table from here instead of reading back rows this
   * process has just written (takeInserted). Bounded; a gap (evictions, bulk moves, a full
   * ring) makes it read the table again.
   */
  private inserted: { serial: number; row: OutboxRow }[] = [];
  /** Outbox rows inserted by the transaction under way: kept only if it commits. */
  private insertedPending: OutboxRow[] = [];
  /** The transaction under way removed or added outbox rows the ring does not hold. */
  private insertedGap = false;
  /** Serial of the last outbox insert committed (every path: a gap counts one). */
  private insertSerial = 0;
  private txDepth = 0;

  constructor(opts: StoreOptions) {
    this.log = opts.log;
    this.now = opts.now ?? (() => new Date());
    this.outboxMax = opts.outboxMax ?? 10_000;
    this.path = opts.memory ? ':memory:' : path.join(opts.dataDir, DB_FILE);
    const migrations = opts.migrations ?? MIGRATIONS;

    let incident: StoreIncident | null = null;
    let db: Database.Database;
    if (!opts.memory) makeDataDir(opts.dataDir);
    this.floor = new ReplayFloor(opts.dataDir, this.log);
    try {
      db = openAndMigrate(this.path, migrations, opts.nativeBinding);
    } catch (e) {
      // Only a damaged file is moved aside. A newer schema, a permission or a full
      // disk, a busy database: the file is left alone and the typed error goes up
      // (the agent runs 911 without its store and tries again).
      const err = classifyStoreError(e, `cannot open the store at ${this.path}`);
      if (!(err instanceof StoreCorruptError)) throw err;
      const keptAs = `${this.path}.corrupt-${this.now().toISOString().replace(/[:.]/g, '-')}`;
      this.log.error({ err, keptAs }, 'store corrupt: kept aside, starting a fresh store');
      try {
        for (const suffix of ['', '-wal', '-shm']) {
          if (existsSync(this.path + suffix)) renameSync(this.path + suffix, keptAs + suffix);
        }
      } catch (moveErr) {
        throw classifyStoreError(moveErr, `store corrupt and cannot be moved aside to ${keptAs}`);
      }
      incident = { at: this.now().toISOString(), reason: err.message, keptAs };
      this.salvageFloor(keptAs, opts.nativeBinding);
      try {
        db = openAndMigrate(this.path, migrations, opts.nativeBinding);
      } catch (err2) {
        throw classifyStoreError(err2, `cannot open a fresh store at ${this.path}`);
      }
    }
    try {
      this.db = db;
      this.stmt = statementCache(db);
      this.incident = incident;
      this.stmts = {
        getAddress: db.prepare('SELECT * FROM address WHERE id = 1'),
        upsertAddress: db.prepare(`
          INSERT INTO address (id, device_id, version, hash, document, signature, received_at, applied_at)
          VALUES (1, @deviceId, @version, @hash, @document, @signature, @receivedAt, @appliedAt)
          ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, version = excluded.version,
            hash = excluded.hash, document = excluded.document, signature = excluded.signature,
            received_at = excluded.received_at, applied_at = excluded.applied_at`),
        insertHistory: db.prepare(`
          INSERT INTO address_history (version, hash, document, signature, received_at, applied_at)
          VALUES (@version, @hash, @document, @signature, @receivedAt, @appliedAt)`),
        pruneHistory: db.prepare(
          'DELETE FROM address_history WHERE seq <= (SELECT seq FROM address_history ORDER BY seq DESC LIMIT 1 OFFSET ?)',
        ),
        history: db.prepare('SELECT version, hash, applied_at AS appliedAt FROM address_history ORDER BY seq DESC LIMIT ?'),
        insertOutbox: db.prepare('INSERT OR IGNORE INTO outbox (id, type, protected, payload, created_at) VALUES (?, ?, ?, ?, ?)'),
        evictOldest: db.prepare('DELETE FROM outbox WHERE seq = (SELECT seq FROM outbox WHERE protected = 0 ORDER BY seq LIMIT 1)'),
        pending: db.prepare('SELECT seq, id, type, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?'),
        deleteOutbox: db.prepare('DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))'),
        deleteOutboxIds: db.prepare('DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))'),
        completeOutbox: db.prepare('UPDATE outbox SET payload = ? WHERE id = ?'),
        insertBegun: db.prepare('INSERT INTO emergency_begun (id, type, payload, created_at) VALUES (?, ?, ?, ?)'),
        deleteBegun: db.prepare('DELETE FROM emergency_begun WHERE id = ?'),
        syncFull: db.prepare('PRAGMA synchronous = FULL'),
        syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
        countOutbox: db.prepare('SELECT count(*) AS n FROM outbox'),
        getSetting: db.prepare('SELECT value FROM settings WHERE key = ?'),
        putSetting: db.prepare(
          'INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
        ),
        // The value bound as UTF-8 bytes, stored as TEXT (the database's encoding is UTF-8): the same row as putSetting's.
        putSettingUtf8: db.prepare(
          'INSERT INTO settings (key, value, updated_at) VALUES (?, CAST(? AS TEXT), ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
        ),
        sameSettingUtf8: db.prepare('SELECT 1 AS same FROM settings WHERE key = ? AND value = CAST(? AS TEXT)'),
      };
      // Emergency events begun before a crash (their INVITE may have gone): into the outbox, as begun.
      this.recoveredEmergencyEvents = this.recoverBegun();
      this.outboxCount = (this.stmts.countOutbox.get() as { n: number }).n;
      // The floor file of an agent from before it existed starts from what this store holds.
      this.floor.raise('address', this.getAddress()?.version ?? 0);
      this.floor.raise('locations', this.storedLocationsVersion(db));
      if (opts.checkpoints && !opts.memory) this.checkpointer = this.startCheckpointer(opts.checkpoints, opts.nativeBinding);
    } catch (e) {
      // A statement that does not prepare (a schema from elsewhere), a full disk moving begun rows:
      // the handle is closed, or the next open of the same file would find it still held.
      db.close();
      throw classifyStoreError(e, `cannot open the store at ${this.path}`);
    }
  }

  private startCheckpointer(c: NonNullable<StoreOptions['checkpoints']>, nativeBinding?: string): WalCheckpointer {
    const checkpointer = new WalCheckpointer({
      script: c.script,
      file: this.path,
      ...(nativeBinding ? { nativeBinding } : {}),
      log: this.log,
      ...(c.delayMs !== undefined ? { delayMs: c.delayMs } : {}),
      ...(c.idleMs !== undefined ? { idleMs: c.idleMs } : {}),
      onFailure: (err) => {
        // SQLite checkpoints again, on this connection: the WAL stays bounded, at the old cost to the main thread.
        this.log.error({ err }, 'checkpoint worker failed: SQLite checkpoints the WAL on the main thread again');
        if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT}`);
      },
    });
    this.db.pragma('wal_autocheckpoint = 0');
    return checkpointer;
  }

  /** A checkpoint by the worker now (tests, the benchmark); null without a checkpoint worker. */
  checkpoint(): ReturnType<WalCheckpointer['checkpoint']> | null {
    return this.checkpointer?.checkpoint() ?? null;
  }

  /**
   * The lowest version a signed push of this kind may carry: the highest ever applied here,
   * even before a reset of a corrupt store (an older one is a replay).
   */
  replayFloor(kind: FloorKind): number {
    return this.floor.get(kind);
  }

  /** A push of this kind and version was applied (the address raises its own in applyAddress). */
  raiseReplayFloor(kind: FloorKind, version: number): void {
    this.floor.raiseSoon(kind, version);
  }

  /** The applied locations document's version (JSON in settings), read by SQLite without parsing the whole document here. */
  private storedLocationsVersion(db: Database.Database): number {
    const row = db
      .prepare("SELECT json_extract(value, '$.version') AS v FROM settings WHERE key = 'locations.doc' AND json_valid(value)")
      .get() as { v: unknown } | undefined;
    return typeof row?.v === 'number' ? row.v : 0;
  }

  /** Best effort: the versions a corrupt file still yields raise the floor (a file from before the floor file, say). */
  private salvageFloor(file: string, nativeBinding?: string): void {
    try {
      const old = new Database(file, { readonly: true, fileMustExist: true, ...(nativeBinding ? { nativeBinding } : {}) });
      try {
        const a = old.prepare('SELECT version FROM address WHERE id = 1').get() as { version: unknown } | undefined;
        if (typeof a?.version === 'number') this.floor.raise('address', a.version);
        this.floor.raise('locations', this.storedLocationsVersion(old));
      } finally {
        old.close();
      }
    } catch (err) {
      this.log.warn({ err, file }, 'nothing salvaged from the corrupt store: the replay floor file holds the versions');
    }
  }

  health(): StoreHealth {
    return {
      path: this.path,
      schemaVersion: this.db.pragma('user_version', { simple: true }) as number,
      journalMode: this.db.pragma('journal_mode', { simple: true }) as string,
      incident: this.incident,
      writes: this.writes,
      checkpoints: this.checkpointer?.status ?? null,
    };
  }

  getAddress(): StoredAddress | null {
    const row = this.stmts.getAddress.get() as
      | { version: number; hash: string; document: string; signature: string; received_at: string; applied_at: string }
      | undefined;
    if (!row) return null;
    return {
      doc: JSON.parse(row.document) as AddressDocument,
      version: row.version,
      hash: row.hash,
      signature: row.signature,
      receivedAt: row.received_at,
      appliedAt: row.applied_at,
    };
  }

  addressHistory(limit = 20): { version: number; hash: string; appliedAt: string }[] {
    return this.stmts.history.all(limit) as { version: number; hash: string; appliedAt: string }[];
  }

  /** Stores a verified address, its history entry and its event in one transaction. */
  applyAddress(a: Omit<StoredAddress, 'appliedAt'>, event: EventPayload): StoredAddress {
    const stored: StoredAddress = { ...a, appliedAt: this.now().toISOString() };
    const row = {
      deviceId: a.doc.deviceId,
      version: a.version,
      hash: a.hash,
      document: JSON.stringify(a.doc),
      signature: a.signature,
      receivedAt: a.receivedAt,
      appliedAt: stored.appliedAt,
    };
    this.transaction(() => {
      this.stmts.upsertAddress.run(row);
      this.stmts.insertHistory.run(row);
      this.stmts.pruneHistory.run(HISTORY_KEEP);
      this.insertEvent(event);
    });
    this.floor.raiseSoon('address', a.version);
    return stored;
  }

  /** Queues an event for the server. Returns false if a full outbox dropped it. */
  enqueue(event: EventPayload): boolean {
    let kept = false;
    this.transaction(() => {
      kept = this.insertEvent(event);
    });
    return kept;
  }

  /**
   * The emergency event's row, before the INVITE: one prepared INSERT in
   * autocommit into emergency_begun (no index: one page), in WAL with
   * synchronous=NORMAL, so no fsync (tens of µs). A SIGKILL after it cannot lose
   * it (the OS has the page); a power cut can, until completeEmergencyEvent()
   * syncs. The outbox (and so the drain) sees it when it is completed, or at the
   * next open after a crash.
   */
  beginEmergencyEvent(event: EventPayload, payload: string = JSON.stringify(event)): void {
    this.stmts.insertBegun.run(event.id, event.type, payload, event.ts);
    // Not noted for a checkpoint here (before the INVITE): its completion, a transaction, is.
    this.writes++;
  }

  /**
   * The same event completed with the call's details, into the outbox, its
   * begun row removed, committed with synchronous=FULL: the WAL is fsynced.
   * Also when begin could not store it (or the store was away then).
   */
  completeEmergencyEvent(event: EventPayload): void {
    this.durable(() => {
      const payload = JSON.stringify(event);
      // Already in the outbox when a second open moved the begun row there.
      if (this.stmts.completeOutbox.run(payload, event.id).changes === 0) {
        const r = this.stmts.insertOutbox.run(event.id, event.type, 1, payload, event.ts);
        this.outboxCount += r.changes;
        if (r.changes > 0) this.insertedPending.push({ seq: Number(r.lastInsertRowid), id: event.id, type: event.type, payload });
      }
      this.stmts.deleteBegun.run(event.id);
    });
  }

  /**
   * Emergency events a process that died began in the begin file (their INVITE may have
   * gone): into the outbox as begun, unless an event with that id is there already
   * (completed before the process died). Synced, as a completion is. Returns how many went in.
   */
  recoverEmergencyEvents(events: readonly EventPayload[]): number {
    if (events.length === 0) return 0;
    let moved = 0;
    this.durable(() => {
      for (const e of events) moved += this.stmts.insertOutbox.run(e.id, e.type, 1, JSON.stringify(e), e.ts).changes;
      this.outboxCount += moved;
      this.insertedGap = true;
    });
    if (moved > 0) this.log.warn({ moved }, 'emergency events begun before the agent stopped (begin file) moved to the outbox');
    return moved;
  }

  /** Emergency events begun and not completed (their process died, or the INVITE is on its way). */
  begunEmergencyEvents(): EventPayload[] {
    return (this.stmt('SELECT payload FROM emergency_begun ORDER BY rowid').all() as { payload: string }[]).map(
      (r) => JSON.parse(r.payload) as EventPayload,
    );
  }

  private recoverBegun(): number {
    // Most opens find nothing: no write, so a full disk does not fail the open.
    if (this.stmt('SELECT 1 FROM emergency_begun LIMIT 1').get() === undefined) return 0;
    let moved = 0;
    try {
      this.transaction(() => {
        moved = this.stmt(
          'INSERT OR IGNORE INTO outbox (id, type, protected, payload, created_at) SELECT id, type, 1, payload, created_at FROM emergency_begun ORDER BY rowid',
        ).run().changes;
        this.insertedGap = true;
        this.stmt('DELETE FROM emergency_begun').run();
      });
    } catch (err) {
      // The rows stay where they are (durable) and move at the next open; the rest of the agent starts now.
      this.log.error({ err }, 'emergency events begun before the agent stopped could not be moved to the outbox yet');
      return 0;
    }
    if (moved > 0) this.log.warn({ moved }, 'emergency events begun before the agent stopped moved to the outbox');
    return moved;
  }

  /** Commits fn with synchronous=FULL (fsync of the WAL), then back to NORMAL. */
  durable(fn: () => void): void {
    this.stmts.syncFull.run();
    try {
      this.transaction(fn);
    } finally {
      this.stmts.syncNormal.run();
    }
  }

  /** Removes events the server confirmed it stored (by id). Returns how many were still here, and how many of those were emergency or test-call events. */
  ackEventsById(ids: readonly string[]): { removed: number; emergency: number } {
    if (ids.length === 0) return { removed: 0, emergency: 0 };
    let removed = 0;
    let emergency = 0;
    this.transaction(() => {
      emergency = (
        this.stmt('SELECT count(*) AS n FROM outbox WHERE protected = 1 AND id IN (SELECT value FROM json_each(?))').get(
          JSON.stringify(ids),
        ) as { n: number }
      ).n;
      removed = this.stmts.deleteOutboxIds.run(JSON.stringify(ids)).changes;
      this.outboxCount -= removed;
    });
    return { removed, emergency };
  }

  pendingEvents(afterSeq: number, limit: number): OutboxRow[] {
    return this.stmts.pending.all(afterSeq, limit) as OutboxRow[];
  }

  /** Where the outbox's inserts stand now: pass it to takeInserted later. */
  outboxMark(): number {
    return this.insertSerial;
  }

  /**
   * The rows committed to the outbox since mark, in seq order, from memory; null when they
   * cannot all be had from memory (then read the table). One reader: what it took is let go.
   */
  takeInserted(mark: number): OutboxRow[] | null {
    const first = this.inserted[0];
    if (mark === this.insertSerial) return [];
    if (!first || first.serial > mark + 1 || mark > this.insertSerial) return null;
    const from = mark + 1 - first.serial;
    const rows = this.inserted.slice(from).map((e) => e.row);
    this.inserted = [];
    return rows;
  }

  /** Removes acknowledged events in one transaction (the drain batches them). */
  ackEvents(seqs: readonly number[]): void {
    if (seqs.length === 0) return;
    this.transaction(() => {
      this.outboxCount -= this.stmts.deleteOutbox.run(JSON.stringify(seqs)).changes;
    });
  }

  private recountOutbox(): void {
    try {
      this.outboxCount = (this.stmts.countOutbox.get() as { n: number }).n;
    } catch (err) {
      this.log.warn({ err }, 'outbox count not read again after a failed write');
    }
  }

  outboxBacklog(): number {
    return this.outboxCount;
  }

  getSetting(key: string): string | undefined {
    return (this.stmts.getSetting.get(key) as { value: string } | undefined)?.value;
  }

  /** Writes only when the value differs. Returns whether it wrote. */
  setSetting(key: string, value: string): boolean {
    if (this.getSetting(key) === value) return false;
    this.transaction(() => this.stmts.putSetting.run(key, value, this.now().toISOString()));
    return true;
  }

  /**
   * setSetting with the value given as its UTF-8 bytes: the same TEXT row, but no JS string is made
   * for it (a locations push's 64 KiB parts arrive from the worker as bytes: as strings they were
   * 2 MiB of main-thread heap a push). Writes only when the value differs. Returns whether it wrote.
   */
  setSettingUtf8(key: string, utf8: Uint8Array): boolean {
    if (this.stmts.sameSettingUtf8.get(key, utf8)) return false;
    this.transaction(() => this.stmts.putSettingUtf8.run(key, utf8, this.now().toISOString()));
    return true;
  }

  /** Removes one setting. Returns whether it was there. */
  deleteSetting(key: string): boolean {
    let removed = false;
    this.transaction(() => (removed = this.stmt('DELETE FROM settings WHERE key = ?').run(key).changes > 0));
    return removed;
  }

  /** Keys of the settings whose key starts with prefix (a range on the primary key). */
  settingKeys(prefix: string): string[] {
    return (
      this.stmt('SELECT key FROM settings WHERE key >= ? AND key < ? ORDER BY key').all(prefix, `${prefix}\uffff`) as { key: string }[]
    ).map((r) => r.key);
  }

  // ---- emergency-services notice and diagnostics runs (migration 2) ----

  noticeState(): NoticeState | null {
    const row = this.stmt('SELECT * FROM emergency_notice WHERE id = 1').get() as
      | {
          address_hash: string | null;
          address_version: number | null;
          shown_at: string;
          acknowledged_at: string | null;
          acknowledged_via: string | null;
        }
      | undefined;
    return row
      ? {
          addressHash: row.address_hash,
          addressVersion: row.address_version,
          shownAt: row.shown_at,
          acknowledgedAt: row.acknowledged_at,
          acknowledgedVia: row.acknowledged_via,
        }
      : null;
  }

  saveNoticeShown(s: NoticeState): void {
    this.transaction(() => this.putNotice(s));
  }

  /** The acknowledgement and its event, in one transaction. */
  saveNoticeAcknowledged(s: NoticeState, event: EventPayload): void {
    this.transaction(() => {
      this.putNotice(s);
      this.insertEvent(event);
    });
  }

  /** A diagnostics report and its event, in one transaction; the last 20 reports are kept. */
  saveDiagnostics(r: { id: string; startedAt: string; overall: string }, event: EventPayload): void {
    this.transaction(() => {
      this.stmt('INSERT OR REPLACE INTO diagnostics_runs (id, started_at, overall, report) VALUES (?, ?, ?, ?)').run(
        r.id,
        r.startedAt,
        r.overall,
        JSON.stringify(r),
      );
      this.stmt('DELETE FROM diagnostics_runs WHERE seq <= (SELECT seq FROM diagnostics_runs ORDER BY seq DESC LIMIT 1 OFFSET 20)').run();
      this.insertEvent(event);
    });
  }

  lastDiagnostics(): unknown {
    const row = this.stmt('SELECT report FROM diagnostics_runs ORDER BY seq DESC LIMIT 1').get() as { report: string } | undefined;
    return row ? (JSON.parse(row.report) as unknown) : null;
  }

  // ---- location observations (migration 3): one row per kind, written only on change ----

  getObservation(source: string): { fingerprint: string; data: string; observedAt: string } | undefined {
    return this.stmt('SELECT fingerprint, data, observed_at AS observedAt FROM location_observation WHERE source = ?').get(source) as
      | { fingerprint: string; data: string; observedAt: string }
      | undefined;
  }

  /** Upserts the row and queues the event in one transaction, only when the fingerprint differs. */
  recordObservation(source: string, fingerprint: string, data: unknown, event?: EventPayload): boolean {
    if (this.getObservation(source)?.fingerprint === fingerprint) return false;
    this.transaction(() => {
      this.stmt(`
          INSERT INTO location_observation (source, fingerprint, data, observed_at) VALUES (?, ?, ?, ?)
          ON CONFLICT (source) DO UPDATE SET fingerprint = excluded.fingerprint, data = excluded.data, observed_at = excluded.observed_at`).run(
        source,
        fingerprint,
        JSON.stringify(data),
        this.now().toISOString(),
      );
      if (event) this.insertEvent(event);
    });
    return true;
  }

  private putNotice(s: NoticeState): void {
    this.stmt(`
        INSERT INTO emergency_notice (id, address_hash, address_version, shown_at, acknowledged_at, acknowledged_via)
        VALUES (1, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET address_hash = excluded.address_hash, address_version = excluded.address_version,
          shown_at = excluded.shown_at, acknowledged_at = excluded.acknowledged_at, acknowledged_via = excluded.acknowledged_via`).run(
      s.addressHash,
      s.addressVersion,
      s.shownAt,
      s.acknowledgedAt,
      s.acknowledgedVia,
    );
  }

  /** Closes the connection; the checkpoint worker's is closed with its thread (not awaited: the thread is unref'd). */
  close(): void {
    this.floor.close();
    this.checkpointer?.close().catch((err: unknown) => this.log.warn({ err }, 'checkpoint worker did not stop cleanly'));
    if (this.db.open) this.db.close();
  }

  private insertEvent(event: EventPayload): boolean {
    const isProtected = PROTECTED_EVENT_TYPES.has(event.type);
    if (this.outboxCount >= this.outboxMax) {
      const evicted = this.stmts.evictOldest.run().changes;
      this.outboxCount -= evicted;
      if (evicted === 0 && !isProtected) {
        this.log.warn({ id: event.id, type: event.type }, 'outbox full of protected events: event dropped');
        return false;
      }
      if (evicted > 0) this.log.warn({ type: event.type }, 'outbox full: oldest unprotected event evicted');
      // The evicted row may be one the ring holds.
      if (evicted > 0) this.insertedGap = true;
    }
    const payload = JSON.stringify(event);
    const r = this.stmts.insertOutbox.run(event.id, event.type, isProtected ? 1 : 0, payload, event.ts);
    this.outboxCount += r.changes;
    if (r.changes > 0) this.insertedPending.push({ seq: Number(r.lastInsertRowid), id: event.id, type: event.type, payload });
    return true;
  }

  private transaction(fn: () => void): void {
    this.txDepth++;
    try {
      this.db.transaction(fn)();
    } catch (err) {
      this.txDepth--;
      if (this.txDepth === 0) {
        this.insertedPending = [];
        this.insertedGap = false;
      } else this.insertedGap = true; // an inner savepoint rolled back: which pending rows stay is not known here
      // Rolled back: the outbox count fn may have moved is read again (a full disk still reads).
      this.recountOutbox();
      // SQLite's failures (a full disk, an I/O error) as the typed store errors; anything else as it is.
      if (String((err as { code?: unknown })?.code ?? '').startsWith('SQLITE_'))
        throw classifyStoreError(err, `store write failed (${this.path})`);
      throw err;
    }
    this.txDepth--;
    if (this.txDepth === 0) this.commitInserted();
    this.writes++;
    this.checkpointer?.noteWrite();
  }

  /** The committed transaction's outbox rows join the ring (a gap empties it: the drainer reads the table). */
  private commitInserted(): void {
    if (this.insertedGap) {
      this.inserted = [];
      this.insertSerial += 1 + this.insertedPending.length;
    } else {
      for (const row of this.insertedPending) this.inserted.push({ serial: ++this.insertSerial, row });
      // Nobody draining (offline): the oldest go, and the drainer reads the table for them.
      if (this.inserted.length > INSERTED_KEEP) this.inserted.splice(0, this.inserted.length - INSERTED_KEEP);
    }
    this.insertedPending = [];
    this.insertedGap = false;
  }
}

/** The data folder; any failure but a full disk is a setup fault (Node reports a read-only parent as ENOENT). */
function makeDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const msg = `cannot create the data folder ${dir}: ${(e as Error).message}`;
    throw code === 'ENOSPC' || code === 'EDQUOT' ? new StoreFullError(msg, { cause: e }) : new StoreAccessError(msg, { cause: e });
  }
}

function openAndMigrate(file: string, migrations: readonly Migration[], nativeBinding?: string): Database.Database {
  const db = new Database(file, nativeBinding ? { nativeBinding } : {});
  try {
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL survives a crash or SIGKILL; only a power cut can lose the last commit.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 2000');
    // A 512 KiB page cache, not SQLite's 2 MiB: a 2 MiB locations push read or written filled it and
    // the pages stayed in the agent's RSS (+4.2 MB against +2.1 MB, measured); the emergency path's
    // few hot pages fit, the rest is read from the kernel's page cache.
    db.pragma('cache_size = -512');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new StoreCorruptError(`integrity check failed: ${String(check)}`);
    try {
      migrate(db, migrations);
    } catch (err) {
      // The agent's own type for it: the store stays away, and the file is never moved aside.
      if (err instanceof SchemaTooNewError) throw new StoreTooNewError(err.message.replace('this code', 'this agent'));
      throw err;
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
