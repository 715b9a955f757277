// The VoiceStack contract (test/helpers/voice-contract.ts) against both
// backends: the in-memory fake the unit tests use, and the PJSIP addon with
// SIPp peers on loopback. A difference between them fails here.
import { describe } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { createPjsipVoiceStack } from '../../hal/voice/pjsip/index.js';
import type { CallId } from '../../hal/voice/types.js';
import { CONTRACT_START, voiceStackContract, type ContractBackend, type ContractPeer } from '../helpers/voice-contract.js';
import { refuseScenario, startKamailio, startSipp, type Sipp } from '../helpers/sip.js';
import { silentUdp } from '../helpers/emergency.js';
import { freePort } from '../helpers/ports.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';

const SIPP_DIR = path.resolve(import.meta.dirname, '..', 'fixtures', 'sipp');
const scenario = (name: string) => path.join(SIPP_DIR, name);
const REGISTRAR = path.resolve(import.meta.dirname, '..', 'fixtures', 'kamailio', 'registrar.cfg');

describe('VoiceStack contract: MemoryVoiceStack', () => {
  voiceStackContract(async () => {
    const stack = new MemoryVoiceStack();
    // The memory network: what a peer at each target does, as the unit tests drive it.
    const behaviours = new Map<string, (call: CallId) => void>();
    const later = (fn: () => void) => setImmediate(fn);
    let n = 0;
    stack.on('callState', (e) => {
      if (e.role !== 'caller' || e.state !== 'CALLING') return;
      behaviours.get(e.remoteUri)?.(e.callId);
    });
    const peer = (behaviour: (call: CallId, done: () => void) => void, scheme = 'sip', params = ''): ContractPeer => {
      const target = `${scheme}:peer-${n++}@127.0.0.1:5099${params}`;
      let finish!: () => void;
      const finished = new Promise<void>((r) => (finish = r));
      behaviours.set(target, (call) => behaviour(call, finish));
      return { target, done: () => finished, close: async () => void behaviours.delete(target) };
    };
    const whenEnded = (call: CallId, fn: () => void) => {
      const off = stack.on('callState', (e) => {
        if (e.callId === call && e.state === 'DISCONNECTED') {
          off();
          fn();
        }
      });
    };
    const answerAll = (call: CallId) => {
      stack.respond(call, 100);
      stack.respond(call, 180);
      stack.respond(call, 200);
    };
    const callIn = (onAnswer: (call: CallId, code: number, done: () => void) => void): ContractPeer => {
      let finish!: () => void;
      const finished = new Promise<void>((r) => (finish = r));
      later(() => {
        const call = stack.incomingCall('"PSAP" <sip:psap@127.0.0.1:5098>', [], { address: '127.0.0.1', port: 5098, transport: 'udp' });
        // The contract's header list, as the real stack copies them from the INVITE.
        void call;
      });
      const off = stack.on('callState', (e) => {
        if (e.role === 'callee' && (e.state === 'EARLY' || e.state === 'CONFIRMED'))
          later(() => onAnswer(e.callId, e.lastStatusCode, finish));
        if (e.role === 'callee' && e.state === 'DISCONNECTED') off();
      });
      return { target: '', done: () => finished, close: async () => off() };
    };
    const backend: ContractBackend = {
      stack,
      close: async () => {},
      network: {
        registrar: async () => {
          const password = 'right-password';
          // The registrar's answers, as the unit tests drive them: 200 for the password, 401 otherwise.
          stack.onRegister = (account, renew, config) =>
            later(() => {
              if (!stack.accounts.has(account)) return;
              const good = config.credentials?.some((c) => c.password === password) ?? false;
              stack.registration(account, good ? 200 : 401, renew);
            });
          return {
            uri: 'sip:127.0.0.1:5090',
            password,
            close: async () => {
              stack.onRegister = undefined;
            },
          };
        },
        answers: async () =>
          peer((call, done) =>
            later(() => {
              answerAll(call);
              whenEnded(call, done);
            }),
          ),
        answersThenHangsUp: async () =>
          peer((call, done) =>
            later(() => {
              answerAll(call);
              later(() => {
                stack.remoteHangup(call);
                done();
              });
            }),
          ),
        holds: async () =>
          peer((call, done) =>
            later(() => {
              stack.respond(call, 100);
              stack.respond(call, 200);
              whenEnded(call, done);
            }),
          ),
        rings: async () =>
          peer((call, done) =>
            later(() => {
              stack.respond(call, 100);
              stack.respond(call, 180);
              whenEnded(call, done);
            }),
          ),
        refuses: async (code, reason) =>
          peer((call, done) =>
            later(() => {
              stack.respond(call, 100);
              stack.respond(call, code, reason);
              done();
            }),
          ),
        silent: async () =>
          peer((call) =>
            setTimeout(() => stack.setCallState(call, 'DISCONNECTED', 408, 'Request Timeout'), CONTRACT_START.transactionTimeoutMs),
          ),
        closedTcp: async () =>
          peer((call) => later(() => stack.setCallState(call, 'DISCONNECTED', 503, 'Connection refused', true)), 'sip', ';transport=tcp'),
        callsIn: async () =>
          callIn((call, code, done) => {
            if (code !== 200) return;
            stack.remoteHangup(call);
            done();
          }),
        callsInAndCancels: async () =>
          callIn((call, code, done) => {
            if (code !== 180) return;
            stack.setCallState(call, 'DISCONNECTED', 487, 'Request Terminated');
            done();
          }),
      },
    };
    return backend;
  });
});

const gate = requires('the VoiceStack contract against the PJSIP stack', ['voice', 'sipp', 'kamailio']);

describe.skipIf(gate.skip)('VoiceStack contract: PJSIP with SIPp peers', () => {
  voiceStackContract(async () => {
    const stack = createPjsipVoiceStack({ logger: silentLog() });
    const open = new Set<{ close(): Promise<void> }>();
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'e911-contract-'));
    const sippPeer = async (file: string, params = ''): Promise<ContractPeer> => {
      const sipp = await startSipp({ scenario: path.isAbsolute(file) ? file : scenario(file), timeoutSec: 20 });
      open.add(sipp);
      return { target: `sip:callee@127.0.0.1:${sipp.port}${params}`, done: () => succeeded(sipp), close: () => sipp.close() };
    };
    const succeeded = async (sipp: Sipp) => {
      const exit = await sipp.exited;
      if (exit.code !== 0)
        throw new Error(`SIPp exited ${exit.code ?? exit.signal}:\n${sipp.output()}\n${sipp.errors()}\n${sipp.messages()}`);
    };
    const udpPort = async () => {
      // The stack's own UDP port: from the transports it started (port 0 picked a free one).
      const info = await started;
      return info.transports.find((t) => t.kind === 'udp')!.port;
    };
    // The contract starts the stack after make(): catch its result on the way.
    let resolveStarted!: (r: Awaited<ReturnType<typeof stack.start>>) => void;
    const started = new Promise<Awaited<ReturnType<typeof stack.start>>>((r) => (resolveStarted = r));
    const start = stack.start.bind(stack);
    stack.start = async (o) => {
      const r = await start(o);
      resolveStarted(r);
      return r;
    };
    const callIn = async (file: string): Promise<ContractPeer> => {
      const port = await freePort();
      const sipp = await startSipp({
        scenario: scenario(file),
        remote: `127.0.0.1:${await udpPort()}`,
        port,
        service: 'desk',
        keys: { psap_host: '127.0.0.1', psap_port: port },
        timeoutSec: 20,
      });
      open.add(sipp);
      return { target: '', done: () => succeeded(sipp), close: () => sipp.close() };
    };
    return {
      stack,
      close: async () => {
        for (const o of open) await o.close();
        rmSync(tmp, { recursive: true, force: true });
      },
      network: {
        registrar: async () => {
          const kam = await startKamailio({ cfg: REGISTRAR, defines: { WITH_AUTH: true, AUTH_PASSWORD: '"right-password"' } });
          open.add(kam);
          return { uri: `sip:127.0.0.1:${kam.port}`, password: 'right-password', close: () => kam.close() };
        },
        answers: () => sippPeer('uas-answer.xml'),
        answersThenHangsUp: () => sippPeer('uas-answer-bye.xml'),
        holds: () => sippPeer('uas-hold.xml'),
        rings: () => sippPeer('uas-ring.xml'),
        refuses: (code, reason) => sippPeer(refuseScenario(tmp, code, reason)),
        silent: async () => {
          const port = await freePort();
          const s = await silentUdp(port);
          return { target: `sip:callee@127.0.0.1:${port}`, done: async () => {}, close: () => s.close() };
        },
        closedTcp: async () => ({
          target: `sip:callee@127.0.0.1:${await freePort()};transport=tcp`,
          done: async () => {},
          close: async () => {},
        }),
        callsIn: () => callIn('uac-callback-answered.xml'),
        callsInAndCancels: () => callIn('uac-callback-rings.xml'),
      },
    };
  });
});
