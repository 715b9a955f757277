// The emergency benchmark's "wire": a separate process with a UDP socket on
// loopback that stamps each INVITE's arrival on the monotonic clock
// (process.hrtime.bigint() is CLOCK_MONOTONIC, the same clock in every process
// on Linux), tells the parent over IPC, and rejects the call with 486 so the
// caller's call slot is freed. Run by emergency.bench.ts (fork), not by itself.
import dgram from 'node:dgram';

const port = Number(process.argv[2]);
const sock = dgram.createSocket('udp4');
const seen = new Set<string>();

function header(msg: string, name: string): string {
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(msg);
  return m ? m[1]!.trim() : '';
}

sock.on('message', (buf, rinfo) => {
  const at = process.hrtime.bigint();
  const msg = buf.toString('latin1');
  const method = msg.slice(0, msg.indexOf(' '));
  const callId = header(msg, 'Call-ID');
  if (method === 'ACK') {
    process.send!({ kind: 'ack', callId });
    return;
  }
  if (method !== 'INVITE') return;
  const first = !seen.has(callId);
  seen.add(callId);
  if (first) process.send!({ kind: 'invite', at: at.toString(), callId, fromPort: rinfo.port, bytes: buf.length });
  const reply = [
    'SIP/2.0 486 Busy Here',
    ...msg.split(/\r\n/).filter((l) => /^Via:/i.test(l)),
    `From: ${header(msg, 'From')}`,
    `To: ${header(msg, 'To')};tag=bench`,
    `Call-ID: ${callId}`,
    `CSeq: ${header(msg, 'CSeq')}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  sock.send(reply, rinfo.port, rinfo.address);
});

sock.bind(port, '127.0.0.1', () => process.send!({ kind: 'ready' }));
process.on('disconnect', () => sock.close());
