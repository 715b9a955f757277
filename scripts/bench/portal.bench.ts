// Admin portal benchmarks, each beside a baseline measured in the same run, in
// Debian's Chromium (headless, playwright-core) against the server on loopback:
//  1. a 911 call from a simulated phone (a real agent: outbox, MQTT, server,
//     event stream) until the alert is on the screen, beside the same event
//     reaching the server (its internal bus, which feeds the stream): the
//     difference is the stream and the page. Goal: p99 <= 1 s.
//  2. opening the portal (logged in) until the dashboard shows its data,
//     beside navigating to the bare page shell. Goal: p50 <= 1 s.
//  3. the page's script, gzip, beside Preact's own gzip size (what any Preact
//     page pays). Goal: <= 60 KiB gzip.
// BENCH_PORTAL_CALLS (default 50) and BENCH_PORTAL_LOADS (20) scale them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { browserMissing, seedAccount, startPhone, startPortal } from '../../test/helpers/portal.js';
import { startSmtpSink } from '../../test/helpers/smtp-sink.js';
import { defaultPortalDir } from '../../provisioning/server/portal/serve.js';
import { report, summary } from './stats.js';

const CALLS = Number(process.env.BENCH_PORTAL_CALLS ?? 50);
const LOADS = Number(process.env.BENCH_PORTAL_LOADS ?? 20);

async function main(): Promise<void> {
  const missing = browserMissing();
  if (missing) {
    console.log(`SKIPPED: ${missing}`);
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-bench-portal-'));
  const smtp = await startSmtpSink();
  const h = await startPortal();
  try {
    const { creds } = await seedAccount(h.srv, smtp.port);
    const agent = await startPhone(h.srv, dir, creds);
    await h.login();
    await h.page.locator('header .live.open').waitFor();

    // 1. 911 → alert on screen. Both clocks are this machine's wall clock (timeOrigin + now).
    // Page code as text: this file is compiled for Node, without the DOM's types.
    await h.page.evaluate(`(() => {
      window.seen = {};
      new MutationObserver(() => {
        // Keyed by event id: the portal may draw the alert before this page's own stream has it.
        for (const el of document.querySelectorAll('.alert.emergency[data-event-id]')) {
          window.seen[el.dataset.eventId] ??= performance.timeOrigin + performance.now();
        }
      }).observe(document.body, { childList: true, subtree: true });
    })()`);
    const atServer = new Map<string, { id: string; t: number }>();
    h.srv.app.bus.on('emergency', ({ event }) =>
      atServer.set(String(event.data.callRef), { id: event.id, t: performance.timeOrigin + performance.now() }),
    );
    const toScreen: number[] = [];
    const toServer: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.timeOrigin + performance.now();
      const ref = `bench-${i}`;
      agent.emit('emergency-call', {
        callRef: ref,
        numberDialed: '911',
        placed: true,
        callback: '+14085550100',
        displayName: 'Alice Smith',
      });
      while (!atServer.has(ref)) await new Promise((r) => setTimeout(r, 1));
      const { id, t } = atServer.get(ref)!;
      const handle = await h.page.waitForFunction(
        (eid: string) => (globalThis as unknown as { seen: Record<string, number> }).seen[eid],
        id,
        { polling: 'raf', timeout: 10_000 },
      );
      const seen = (await handle.jsonValue()) as number;
      toScreen.push(seen - t0);
      toServer.push(t - t0);
      await h.page.locator('.alert.emergency').getByRole('button', { name: 'Acknowledge' }).click();
    }
    const a = summary(toScreen);
    const b = summary(toServer);
    report('911 event to alert on screen, p50', a.p50, 'ms', b.p50, 'p99 <= 1000 ms');
    report('911 event to alert on screen, p99', a.p99, 'ms', b.p99, 'p99 <= 1000 ms');

    // 2. Logged-in load until the dashboard shows the phone count, beside the bare shell.
    const page = await h.context.newPage();
    const load: number[] = [];
    const shell: number[] = [];
    for (let i = 0; i < LOADS; i++) {
      let t0 = performance.now();
      await page.goto('/', { waitUntil: 'commit' });
      await page.getByTestId('phones-online').filter({ hasText: '1' }).waitFor();
      load.push(performance.now() - t0);
      t0 = performance.now();
      await page.goto('/portal/app.css', { waitUntil: 'load' });
      shell.push(performance.now() - t0);
    }
    const l = summary(load);
    const s = summary(shell);
    report('portal open to dashboard data, p50', l.p50, 'ms', s.p50, 'p50 <= 1000 ms');
    report('portal open to dashboard data, p99', l.p99, 'ms', s.p99, '(report)');
    await agent.stop();
  } finally {
    await h.close();
    await smtp.close();
    rmSync(dir, { recursive: true, force: true });
  }

  // 3. Bytes the browser fetches for the page's code.
  const require = createRequire(import.meta.url);
  const preact = gzipSync(readFileSync(require.resolve('preact'))).length + gzipSync(readFileSync(require.resolve('preact/hooks'))).length;
  const app = gzipSync(readFileSync(path.join(defaultPortalDir(), 'app.js'))).length;
  const css = gzipSync(readFileSync(path.join(defaultPortalDir(), 'app.css'))).length;
  report('portal script, gzip', app / 1024, 'KiB', preact / 1024, '<= 60 KiB');
  report('portal script + stylesheet, gzip', (app + css) / 1024, 'KiB', preact / 1024, '(report)');
}

await main();
