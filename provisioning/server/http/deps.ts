// What the admin HTTP API is built from, and the constants its routes share.
import type { Logger } from 'pino';
import type { AdminService } from '../service.js';
import type { RecordsService } from '../records.js';
import type { BulkService } from '../bulk.js';
import type { Bus } from '../bus.js';
import type { AccountSummary } from '../db/repo.js';

/** What a provider does to accounts. */
export interface AccountsAdmin {
  list(): Promise<AccountSummary[]>;
  /** Creates the account; a taken id is a ConflictError. */
  create(actor: string, id: string, name: string): Promise<AccountSummary>;
  /** A new admin token of the account (shown once); an unknown account is a NotFoundError. */
  mintToken(actor: string, accountId: string, name: string): Promise<{ token: string }>;
  /** The account a provider's portal session shows from now on; an unknown account is a NotFoundError. */
  show(actor: string, sessionId: string, ownAccountId: string, accountId: string): Promise<AccountSummary>;
}

export const SESSION_COOKIE = 'e911_session';

/**
 * Request body limits. Small by default (an unauthenticated client can make the server read a
 * body before it is refused); routes whose schema allows more get a bound sized from it.
 */
export const BODY_LIMITS = {
  /** Everything not listed below. */
  default: 64 * 1024,
  /** Login: a token. */
  login: 4 * 1024,
  /** A location: up to 64 IP groups of 64 CIDRs and 256 switch ports. */
  location: 512 * 1024,
  /** Bulk email lists: up to 100,000 user ids. */
  bulk: 1024 * 1024,
} as const;
export const API_VERSION = '1.0.0';

export interface ApiDeps {
  service: AdminService;
  records: RecordsService;
  bulk: BulkService;
  bus: Bus;
  log: Logger;
  /**
   * Runs a route's handler in the account of the request's token (every repository call in it
   * belongs to that account); public routes run in the default account.
   */
  inAccount: <T>(accountId: string, fn: () => T) => T;
  /** Creates an account and mints a token of it (provider routes). */
  accounts: AccountsAdmin;
  /** Whether the MQTT link is up, for /api/health. */
  mqttConnected: () => boolean;
  /** The Mosquitto files for the current phones. */
  brokerConfig: () => Promise<{ passwd: string; acl: string; conf: string }>;
  /** Serve the portal's cookie as Secure even over plain HTTP (TLS terminated by a proxy in front). */
  secureCookies?: boolean;
  /** Serve HTTPS with this key and certificate (PEM); session cookies are then Secure. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Portal sessions: absolute lifetime and idle timeout (ms). Default 12 h and 30 min. */
  session?: { absoluteMs?: number; idleMs?: number };
  /**
   * Origins (scheme://host[:port]) allowed to make cookie-authenticated changes besides the
   * API's own (a proxy's public name). Bearer-token requests are not checked: a browser never
   * adds that header by itself.
   */
  allowedOrigins?: readonly string[];
  /** Failed logins allowed per client address within the window before 429. Default 10 per 15 min. */
  loginLimit?: { max: number; windowMs: number };
  /** How often an open event stream keeps alive and checks its token is still valid (ms). */
  streamCheckMs?: number;
}

/** Session lifetimes with their defaults applied. */
export function sessionTimes(deps: ApiDeps): { absoluteMs: number; idleMs: number } {
  return { absoluteMs: deps.session?.absoluteMs ?? 12 * 3600_000, idleMs: deps.session?.idleMs ?? 30 * 60_000 };
}
