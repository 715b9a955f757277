// Free TCP/UDP ports on loopback for the real components the tests start.
import net from 'node:net';
import dgram from 'node:dgram';
import { mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// A SIP stack keeps retransmitting to a peer that is gone (a BYE, an INVITE to a silent
// route) for up to 32 s. If the kernel hands that port to the next test's SIPp, SIPp sees a
// message it never expected and fails. So a port handed out by any test process in this
// run is not handed out again for a while: one marker file per port, shared across workers.
const HANDED_OUT = path.join(os.tmpdir(), `e911-test-ports-${process.getuid?.() ?? 0}`);
const QUARANTINE_MS = 60_000;

/** True if no test process took this port in the last QUARANTINE_MS; marks it taken. */
function claim(port: number): boolean {
  mkdirSync(HANDED_OUT, { recursive: true });
  const marker = path.join(HANDED_OUT, String(port));
  try {
    writeFileSync(marker, '', { flag: 'wx' });
    return true;
  } catch {
    if (Date.now() - statSync(marker).mtimeMs < QUARANTINE_MS) return false;
    const now = new Date();
    utimesSync(marker, now, now);
    return true;
  }
}

/** A port free on 127.0.0.1 for both TCP and UDP at the time of asking, not handed out lately. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, host, () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    // SIP peers listen on UDP too: make sure the same number is free there.
    const udpFree = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, host, () => s.close(() => resolve(true)));
    });
    if (udpFree && claim(port)) return port;
  }
  throw new Error('no free port found');
}
