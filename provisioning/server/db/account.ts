// The account: its row in accounts (the one of the running context, scope.ts) holds the settings
// and the notification channels; a provider creates and lists the accounts.
import type { LocationPolicy } from '../../protocol/address.js';
import type { NotificationPolicy } from '../validation.js';
import type { Sql } from './sql.js';
import { bool, json, rowMapper, text, textOrNull, type Row } from './rows.js';
import type { Account, NotificationSettings } from './types.js';

export const toAccount = rowMapper<Account>({
  id: text('id'),
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
  constructor(
    private readonly s: Sql,
    private readonly acct: () => string,
  ) {}

  async account(): Promise<Account> {
    return toAccount((await this.s.get('SELECT * FROM accounts WHERE id = ?', [this.acct()])) as Row);
  }

  async updateAccount(a: AccountUpdate): Promise<void> {
    const cur = await this.account();
    await this.s.run(
      `UPDATE accounts SET name = ?, contact_email = ?, recommendations = ?, notification_policy = ?, test_notification_policy = ?,
           location_policy = ?, elin_callback = ?, default_address = ?, default_callback = ?, emergency_contacts = ?, updated_at = ?
           WHERE id = ?`,
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
        this.acct(),
      ],
    );
  }

  async setE911(enabled: boolean): Promise<void> {
    await this.s.run('UPDATE accounts SET e911_enabled = ?, e911_changed_at = ?, updated_at = ? WHERE id = ?', [
      enabled ? 1 : 0,
      this.s.iso(),
      this.s.iso(),
      this.acct(),
    ]);
  }

  async notificationSettings(): Promise<NotificationSettings> {
    return toNotificationSettings((await this.s.get('SELECT smtp, sms, webhook, call FROM accounts WHERE id = ?', [this.acct()])) as Row);
  }

  async setNotificationSettings(s: NotificationSettings): Promise<void> {
    const enc = (v: unknown) => (v ? JSON.stringify(v) : null);
    await this.s.run('UPDATE accounts SET smtp = ?, sms = ?, webhook = ?, call = ?, updated_at = ? WHERE id = ?', [
      enc(s.smtp),
      enc(s.sms),
      enc(s.webhook),
      enc(s.call ?? null),
      this.s.iso(),
      this.acct(),
    ]);
  }

  // ---- the provider's view: every account ----

  /** Creates an account (false: the id is taken). */
  async createAccount(id: string, name: string): Promise<boolean> {
    const now = this.s.iso();
    return (
      (
        await this.s.run('INSERT INTO accounts (id, name, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING', [
          id,
          name,
          now,
          now,
        ])
      ).changes > 0
    );
  }

  async accounts(): Promise<AccountSummary[]> {
    return (
      await this.s.all<{ id: string; name: string; e911_enabled: number; created_at: string }>(
        'SELECT id, name, e911_enabled, created_at FROM accounts ORDER BY id',
      )
    ).map((r) => ({ id: r.id, name: r.name, e911Enabled: r.e911_enabled === 1, createdAt: r.created_at }));
  }

  async accountExists(id: string): Promise<boolean> {
    return (await this.s.column('SELECT id FROM accounts WHERE id = ?', [id])).length > 0;
  }
}

export interface AccountSummary {
  id: string;
  name: string;
  e911Enabled: boolean;
  createdAt: string;
}
