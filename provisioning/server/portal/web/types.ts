// The API's shapes, taken from the server's own modules (type-only: nothing of
// the server is bundled into the page).
export type { Account, Location, User, Job, StoredEvent, Notification, AuditEntry, NotificationStatus, IpGroup } from '../../db/repo.js';
export type { AccountView, PhoneView } from '../../service.js';
export type { CsvReport, CsvIssue } from '../../bulk.js';
export type { EmergencyFacts } from '../../notify/message.js';
export type { BusEvents } from '../../bus.js';
export type { PostalAddress } from '../../../protocol/locations.js';
export type { LocationPayload as LocationReport } from '../../../protocol/messages.js';
export type { ReportedLocation } from '../../../protocol/location-report.js';
export type { PlaceAddress, CompanyCallback } from '../../validation.js';
export type { NoticeStatus } from '../../notice-status.js';
export type { CsvApplyResult, CsvApplyMode } from '../../bulk.js';
