// The account: its single row (id 1) holds the settings and the notification channels.
import type { LocationPolicy } from '../../protocol/address.js';
import type { NotificationPolicy } from '../validation.js';
import type { Sql } from './sql.js';
import { bool, json, rowMapper, text, textOrNull, type Row } from './rows.js';
import type { Account, NotificationSettings } from './types.js';

export const toAccount = rowMapper<Account>({
  name: text('name'),
  contactEmail: text('contact_email'),
  e911Enabled: bool('e911_enabled'),
  e911ChangedAt: textOrNull('e911_changed_at'),
  recommendations: bool('recommendations'),
  notificationPolicy: text<NotificationPolicy>('notification_policy'),
  testNotificationPolicy: textOrNull('test_notification_policy') as (r: Row) => NotificationPolicy | null,
  locationPolicy: text<LocationPolicy>('location_policy'),
  elinCallback: bool('elin_callback'),
  defaultAddress: json('default_address', null),
  defaultCallback: json('default_callback', null),
  emergencyContacts: json('emergency_contacts', []),
  updatedAt: text('updated_at'),
});

const toNotificationSettings = rowMapper<NotificationSettings>({
  smtp: json('smtp', null),
  sms: json('sms', null),
  webhook: json('webhook', null),
  call: json('call', null),
});

export type AccountUpdate = Partial<
  Pick<
    Account,
    | 'name'
    | 'contactEmail'
    | 'recommendations'
    | 'notificationPolicy'
    | 'testNotificationPolicy'
    | 'locationPolicy'
    | 'elinCallback'
    | 'defaultAddress'
    | 'defaultCallback'
    | 'emergencyContacts'
  >
>;

const jsonOrNull = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

export class AccountStore {
  constructor(private readonly s: Sql) {}

  async account(): Promise<Account> {
    return toAccount((await this.s.get('SELECT * FROM account WHERE id = 1')) as Row);
  }

  async updateAccount(a: AccountUpdate): Promise<void> {
    const cur = await this.account();
    await this.s.run(
      `UPDATE account SET name = ?, contact_email = ?, recommendations = ?, notification_policy = ?, test_notification_policy = ?,
           location_policy = ?, elin_callback = ?, default_address = ?, default_callback = ?, emergency_contacts = ?, updated_at = ?
           WHERE id = 1`,
      [
        a.name ?? cur.name,
        a.contactEmail ?? cur.contactEmail,
        (a.recommendations ?? cur.recommendations) ? 1 : 0,
        a.notificationPolicy ?? cur.notificationPolicy, // null is a value here (back to "same as 911"): only undefined keeps the stored one.
        a.testNotificationPolicy === undefined ? cur.testNotificationPolicy : a.testNotificationPolicy,
        a.locationPolicy ?? cur.locationPolicy,
        (a.elinCallback ?? cur.elinCallback) ? 1 : 0, // undefined keeps, null removes.
        jsonOrNull(a.defaultAddress === undefined ? cur.defaultAddress : a.defaultAddress),
        jsonOrNull(a.defaultCallback === undefined ? cur.defaultCallback : a.defaultCallback),
        JSON.stringify(a.emergencyContacts ?? cur.emergencyContacts),
        this.s.iso(),
      ],
    );
  }

  async setE911(enabled: boolean): Promise<void> {
    await this.s.run('UPDATE account SET e911_enabled = ?, e911_changed_at = ?, updated_at = ? WHERE id = 1', [
      enabled ? 1 : 0,
      this.s.iso(),
      this.s.iso(),
    ]);
  }

  async notificationSettings(): Promise<NotificationSettings> {
    return toNotificationSettings((await this.s.get('SELECT smtp, sms, webhook, call FROM account WHERE id = 1')) as Row);
  }

  async setNotificationSettings(s: NotificationSettings): Promise<void> {
    const enc = (v: unknown) => (v ? JSON.stringify(v) : null);
    await this.s.run('UPDATE account SET smtp = ?, sms = ?, webhook = ?, call = ?, updated_at = ? WHERE id = 1', [
      enc(s.smtp),
      enc(s.sms),
      enc(s.webhook),
      enc(s.call ?? null),
      this.s.iso(),
    ]);
  }
}
