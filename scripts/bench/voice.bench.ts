// Voice stack timings that tests must not assert (docs/testing.md), each beside a
// baseline from the same run:
//  - makeCall returning (the emergency path's synchronous step), against a SIPp callee;
//    baseline: callInfo() on the same call, the floor of a synchronous addon call;
//  - a closed TCP port ending the call (503, transport error), baseline: a bare
//    net.connect to the same kind of port getting ECONNREFUSED;
//  - a silent UDP port ending the call with 408, baseline: the configured
//    transactionTimeoutMs (the goal is to end at it, not long after).
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPjsipVoiceStack, pjsipAvailability } from '../../hal/voice/pjsip/index.js';
import { SIPP, recordVoice, startSipp } from '../../test/helpers/sip.js';
import { freePort } from '../../test/helpers/ports.js';
import { silentLog } from '../../test/helpers/log.js';
import { report, summary } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ANSWER = path.resolve(here, '../../../test/fixtures/sipp/uas-answer.xml');
const CALLS = Number(process.env.BENCH_VOICE_CALLS ?? 100);
const TIMEOUT_MS = 3000;
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

const voiceAvail = pjsipAvailability();
if (!voiceAvail.available || !SIPP) {
  process.stdout.write(`!!! SKIPPING the voice benchmark: ${!voiceAvail.available ? voiceAvail.message : 'sipp is not installed'}\n`);
  process.exit(0);
}

const voice = createPjsipVoiceStack({ logger: silentLog() });
await voice.start({
  transports: [
    { kind: 'udp', port: 0, boundAddress: '127.0.0.1', publicAddress: '127.0.0.1' },
    { kind: 'tcp', port: 0, boundAddress: '127.0.0.1', publicAddress: '127.0.0.1' },
  ],
  rtp: { boundAddress: '127.0.0.1', publicAddress: '127.0.0.1' },
  transactionTimeoutMs: TIMEOUT_MS,
  logLevel: 1,
});
const rec = recordVoice(voice);

// makeCall, one call at a time against a SIPp callee.
const make: number[] = [];
const info: number[] = [];
const callee = await startSipp({ scenario: ANSWER, calls: CALLS, timeoutSec: 120 });
for (let i = 0; i < CALLS; i++) {
  rec.clear();
  const t0 = nowMs();
  const id = voice.makeCall(`sip:callee@127.0.0.1:${callee.port}`);
  const t1 = nowMs();
  voice.callInfo(id);
  const t2 = nowMs();
  make.push(t1 - t0);
  info.push(t2 - t1);
  await rec.waitFor('callState', (e) => e.callId === id && e.state === 'CONFIRMED', 5000);
  voice.hangup(id);
  await rec.waitFor('callState', (e) => e.callId === id && e.state === 'DISCONNECTED', 5000);
}
await callee.close();
const m = summary(make);
const b = summary(info);
process.stdout.write(`makeCall returning, ${CALLS} calls to a SIPp callee (baseline: callInfo() on the same call)\n`);
report('makeCall p50', m.p50, 'ms', b.p50, '-');
report('makeCall p99', m.p99, 'ms', b.p99, '< 50 ms');

// A closed TCP port.
const tcpEnd: number[] = [];
const bare: number[] = [];
for (let i = 0; i < 10; i++) {
  const port = await freePort();
  rec.clear();
  const t0 = nowMs();
  const id = voice.makeCall(`sip:psap@127.0.0.1:${port};transport=tcp`);
  const end = await rec.waitFor('callState', (e) => e.callId === id && e.state === 'DISCONNECTED', 10_000);
  if (end.lastStatusCode !== 503) throw new Error(`closed TCP port: expected 503, got ${end.lastStatusCode}`);
  tcpEnd.push(end.at - t0);
  const t1 = nowMs();
  await new Promise<void>((resolve) => net.connect(port, '127.0.0.1').once('error', () => resolve()));
  bare.push(nowMs() - t1);
}
process.stdout.write('a call to a closed TCP port ends with 503 (transport error), median of 10 (baseline: bare net.connect refused)\n');
report('closed TCP -> DISCONNECTED', summary(tcpEnd).p50, 'ms', summary(bare).p50, '< 1000 ms');

// A silent UDP port.
const udpEnd: number[] = [];
for (let i = 0; i < 3; i++) {
  const port = await freePort();
  rec.clear();
  const t0 = nowMs();
  const id = voice.makeCall(`sip:psap@127.0.0.1:${port}`);
  const end = await rec.waitFor('callState', (e) => e.callId === id && e.state === 'DISCONNECTED', 3 * TIMEOUT_MS);
  if (end.lastStatusCode !== 408) throw new Error(`silent UDP port: expected 408, got ${end.lastStatusCode}`);
  udpEnd.push(end.at - t0);
}
process.stdout.write(`a call to a silent UDP port ends with 408, max of 3 (baseline: transactionTimeoutMs ${TIMEOUT_MS})\n`);
report('silent UDP -> 408', summary(udpEnd).max, 'ms', TIMEOUT_MS, 'timeout .. timeout + 1 s');

rec.dispose();
await voice.stop({ unregister: false });
