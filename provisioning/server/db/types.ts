// The server's stored things as the rest of the server sees them (camelCase,
// parsed JSON, booleans): what the aggregate modules return and Repo re-exports.
import type { PostalAddress } from '../../protocol/locations.js';
import type { CivicAddress, LocationPolicy } from '../../protocol/address.js';
import type { LocationPayload } from '../../protocol/messages.js';
import type {
  CallSettings,
  CompanyCallback,
  NotificationPolicy,
  PlaceAddress,
  SmsSettings,
  SmtpSettings,
  WebhookSettings,
} from '../validation.js';

export interface Account {
  /** The customer account's id ('default' on a single-customer deployment). */
  id: string;
  name: string;
  contactEmail: string;
  e911Enabled: boolean;
  e911ChangedAt: string | null;
  recommendations: boolean;
  notificationPolicy: NotificationPolicy;
  /** The policy for 933 test calls; null: the same as notificationPolicy. */
  testNotificationPolicy: NotificationPolicy | null;
  locationPolicy: LocationPolicy;
  elinCallback: boolean;
  /** Company defaults: each applies wherever a user or location has none of its own. */
  defaultAddress: PlaceAddress | null;
  defaultCallback: CompanyCallback | null;
  /** Up to 10 emails told of a call when the user, or the location, has no list of its own. */
  emergencyContacts: string[];
  updatedAt: string;
}

export interface NotificationSettings {
  smtp: SmtpSettings | null;
  sms: SmsSettings | null;
  webhook: WebhookSettings | null;
  /** Absent in settings written before the call channel existed: none. */
  call?: CallSettings | null;
}

export interface IpGroup {
  name: string;
  cidrs: string[];
}

export interface Location {
  id: number;
  code: string;
  name: string;
  address: PostalAddress;
  building?: string;
  floor?: string;
  room?: string;
  timeZone: string;
  ipGroups: IpGroup[];
  switchPorts: { chassisId: string; portId?: string }[];
  adminEmails: string[];
  smsNumbers: string[];
  callNumbers: string[];
  /** The language the site's notices are written in (a tag: en, es-US, fr-CA). */
  language: string;
  /** The RFC 5139 form the phones receive. */
  civic: CivicAddress;
  createdAt: string;
  updatedAt: string;
}

export interface User {
  id: number;
  username: string;
  displayName: string;
  extension: string | null;
  locationId: number | null;
  callback: string | null;
  /** The user's own address (works from home), instead of a location; null when none. */
  ownAddress: PlaceAddress | null;
  language: string;
  /** The person's mobile (E.164): texted their location's alerts when the policy includes SMS. */
  mobile: string | null;
  recommendations: boolean;
  emails: string[];
  deviceIds: string[];
  createdAt: string;
  updatedAt: string;
}

export interface Device {
  deviceId: string;
  userId: number | null;
  online: boolean;
  lastSeen: string | null;
  agentVersion: string | null;
  /** Version of the last address issued to it; 0 when none. */
  issuedVersion: number;
  issuedAt: string | null;
  appliedVersion: number | null;
  appliedHash: string | null;
  appliedAt: string | null;
  locationsVersion: number;
  /** The phone's last location report, as PAYLOADS.location checked it on the way in. */
  lastLocation: LocationPayload | null;
  lastLocationAt: string | null;
  mismatch: unknown;
  mismatchAt: string | null;
  /** The last open location-disagreement event's data (both addresses, what 911 sends), or null. */
  disagreement: unknown;
  disagreementAt: string | null;
  credentialsIssuedAt: string | null;
  /** The last acknowledgement of the emergency-services notice the phone reported, or null. */
  noticeAck: NoticeAck | null;
  createdAt: string;
}

/** A phone's notice-acknowledged event, as recorded. */
export interface NoticeAck {
  /** The address version and document hash the notice showed (null: the "no address" notice). */
  version: number | null;
  hash: string | null;
  shownAt: string | null;
  acknowledgedAt: string;
  via: string | null;
  /** The phone's user when the acknowledgement arrived. */
  userId: number | null;
}

export interface PushContext {
  deviceId: string;
  userId: number | null;
  displayName: string | null;
  callback: string | null;
  /** The user's language tag (null: no user). */
  language: string | null;
  locationId: number | null;
  ownAddress: PlaceAddress | null;
  recommendations: boolean;
  issuedVersion: number;
  contentHash: string | null;
  appliedVersion: number | null;
  locationsVersion: number;
  locationsHash: string | null;
}

export interface StoredEvent {
  id: string;
  deviceId: string;
  type: string;
  ts: string;
  receivedAt: string;
  userId: number | null;
  locationId: number | null;
  data: Record<string, unknown>;
}

export type NotificationChannel = 'email' | 'sms' | 'webhook' | 'call';
/** unacknowledged: a call answered, its message played to the end each time, and nobody pressed 1. */
export type NotificationStatus = 'pending' | 'sending' | 'retry' | 'sent' | 'failed' | 'unacknowledged';

export interface Notification {
  id: number;
  eventId: string;
  channel: NotificationChannel;
  recipient: string;
  status: NotificationStatus;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  providerId: string | null;
  createdAt: string;
  sentAt: string | null;
  updatedAt: string;
  /** A call: when someone pressed 1, and how the digit came (rfc2833 or info). */
  acknowledgedAt: string | null;
  ackMethod: string | null;
  /** A call: how many times its message played through. */
  plays: number | null;
}

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  entity: string;
  entityId: string | null;
  details: unknown;
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface Job {
  id: number;
  kind: string;
  status: JobStatus;
  actor: string;
  params: unknown;
  total: number;
  done: number;
  result: unknown;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface ApiToken {
  id: number;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** A user with their location, as the CSV download lists them. */
export interface CsvUserRow {
  id: number;
  username: string;
  displayName: string;
  extension: string | null;
  locationCode: string | null;
  locationName: string | null;
  emails: string[];
}

/** A checked CSV upload waiting to be applied (jobId set once it is). */
export interface CsvUpload {
  id: string;
  createdAt: string;
  rows: number;
  changes: unknown;
  /** Rows with errors when it was checked. */
  errorCount: number;
  jobId: number | null;
}
