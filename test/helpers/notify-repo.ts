// A throwaway SQLite store with SMTP (and optionally SMS) set, for the notifier's unit tests.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Repo } from '../../provisioning/server/db/repo.js';
import type { SmsSettings } from '../../provisioning/server/validation.js';

/** The store and what removes it; no network: the channels the tests pass are fakes. */
export async function notifyRepo(prefix: string, sms: SmsSettings | null = null): Promise<{ repo: Repo; remove: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const repo = new Repo({ dataDir: dir });
  await repo.setNotificationSettings({
    smtp: {
      host: 'relay.example',
      port: 25,
      security: 'none',
      username: undefined,
      from: 'e911@example.com',
      allowInvalidCertificates: false,
    },
    sms,
    webhook: null,
  });
  return {
    repo,
    remove: async () => {
      await repo.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
