// The admin portal in a real browser: Debian's Chromium driven headless by
// playwright-core against a provisioning server on loopback. Each test file
// gets its own server (with the built portal mounted) and browser.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestServer, HQ, type TestServer } from './server-app.js';
import { agentConfig, inProcessAgent } from './agent.js';
import type { Agent } from '../../agent/root.js';
import type { ServerAppOptions } from '../../provisioning/server/app.js';

export const CHROMIUM = process.env.E911_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots of each page, kept after the run (CI keeps the folder). */
export const SCREENSHOT_DIR = path.resolve(process.env.E911_SCREENSHOT_DIR ?? 'test-results/portal');

/** Why the browser tests cannot run here, or null. Printed loudly by the tests that skip. */
export function browserMissing(): string | null {
  return existsSync(CHROMIUM)
    ? null
    : `Chromium not found at ${CHROMIUM}: run scripts/setup.sh (apt package chromium) or set E911_CHROMIUM. Portal browser tests SKIPPED.`;
}

export interface PortalHarness {
  srv: TestServer;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Opens the portal and logs in with the test token. */
  login(page?: Page): Promise<void>;
  /** A second logged-in window (another administrator's screen). */
  newPage(): Promise<Page>;
  shot(name: string, page?: Page): Promise<string>;
  /** Uncaught errors thrown in any of its pages so far ('pageerror'). */
  pageErrors: string[];
  /** Closes everything; throws if any page had an uncaught error (so the file fails). */
  close(): Promise<void>;
}

export class PortalPageErrors extends Error {
  constructor(readonly errors: string[]) {
    super(`the portal threw ${errors.length} uncaught error(s) in the browser:\n${errors.join('\n')}`);
    this.name = 'PortalPageErrors';
  }
}

export async function startPortal(over: Partial<ServerAppOptions> & { streamCheckMs?: number } = {}): Promise<PortalHarness> {
  const srv = await startTestServer({ ...over, portal: true });
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        // Tests run as root, where Chromium's sandbox cannot start.
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--no-first-run',
        // The 911 siren may sound without a click first, as on a console that stays logged in.
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
  } catch (err) {
    await srv.stop();
    throw err;
  }
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, baseURL: srv.app.httpUrl });
  // A step that cannot happen fails naming its locator, well inside the test's own timeout.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  // A browser-side error in a test run is a bug: shown at once, and it fails the file at close().
  const pageErrors: string[] = [];
  const watch = (p: Page) => {
    p.on('pageerror', (err) => {
      pageErrors.push(`${p.url()}: ${err.stack ?? err.message}`);
      console.error(`[portal page error] ${err.message}`);
    });
    // 401s are expected before login; anything else logged as an error is shown.
    p.on('console', (m) => m.type() === 'error' && !m.text().includes('status of 401') && console.error(`[portal console] ${m.text()}`));
  };
  watch(page);
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const login = async (p: Page = page) => {
    await p.goto('/');
    await p.getByLabel('API token').fill(srv.token);
    await p.getByRole('button', { name: 'Log in' }).click();
    await p.getByRole('navigation', { name: 'Main' }).waitFor();
  };
  return {
    srv,
    browser,
    context,
    page,
    login,
    newPage: async () => {
      const p = await context.newPage();
      watch(p);
      await p.goto('/');
      await p.getByRole('navigation', { name: 'Main' }).waitFor();
      return p;
    },
    shot: async (name, p = page) => {
      const file = path.join(SCREENSHOT_DIR, `${name}.png`);
      await p.screenshot({ path: file, fullPage: true });
      return file;
    },
    pageErrors,
    close: async () => {
      await browser.close().catch((err: Error) => console.error(`closing chromium: ${err.message}`));
      await srv.stop();
      if (pageErrors.length > 0) throw new PortalPageErrors(pageErrors);
    },
  };
}

/**
 * The account, one location (HQ), one user with phone-1, E911 on: a portal with something in it.
 * Notices go to the SMTP sink on smtpPort (E911 cannot be enabled without a channel).
 */
export async function seedAccount(
  srv: TestServer,
  smtpPort: number,
): Promise<{ hqId: number; userId: number; creds: { username: string; password: string } }> {
  const { api } = srv;
  await api.patch('/api/account', { name: 'Example Corp', contactEmail: 'it@example.com' });
  await api.put('/api/account/notifications', { smtp: { host: '127.0.0.1', port: smtpPort, security: 'none', from: 'e911@example.com' } });
  const hqId = (await api.post<{ id: number }>('/api/locations', HQ)).id;
  const userId = (
    await api.post<{ id: number }>('/api/users', {
      username: 'alice',
      displayName: 'Alice Smith',
      extension: '2101',
      locationId: hqId,
      callback: '+14085550100',
      emails: ['alice@example.com'],
      deviceIds: ['phone-1'],
    })
  ).id;
  const creds = await api.post<{ username: string; password: string }>('/api/phones/phone-1/credentials');
  await api.post('/api/account/e911', { enabled: true });
  return { hqId, userId, creds };
}

/** A real agent (in this process) logged in to the server's broker as phone-1: the simulated phone. */
export async function startPhone(
  srv: TestServer,
  dir: string,
  creds: { username: string; password: string },
  deviceId = 'phone-1',
  /** Another way to the broker (a relay in front of it), and the subscription QoS. */
  via: { brokerUrl?: string; subscribeQos?: 0 | 1 } = {},
): Promise<Agent> {
  const brokerUrl = via.brokerUrl ?? srv.app.brokerUrl;
  const setup = agentConfig(
    path.join(dir, deviceId),
    { deviceId, brokerUrl, serverPublicKey: srv.keys.publicKey },
    {
      broker: {
        urls: [brokerUrl],
        protocolVersion: 4,
        ...(via.subscribeQos !== undefined ? { subscribeQos: via.subscribeQos } : {}),
        username: creds.username,
        password: creds.password,
        reconnectMinMs: 100,
        reconnectMaxMs: 1000,
      },
    },
  );
  const { agent } = inProcessAgent(setup);
  await agent.start();
  return agent;
}
