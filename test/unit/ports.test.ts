// The test helper that hands out loopback ports never hands one out twice within its
// quarantine, across processes: a SIP stack may still be retransmitting to it.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';

// The compiled helper (npm test builds first), asked from a second process at the same time.
const COMPILED = path.resolve(import.meta.dirname, '../../dist/test/helpers/ports.js');
const OTHER = `import { freePort } from ${JSON.stringify(COMPILED)}; const r = []; for (let i = 0; i < 100; i++) r.push(await freePort()); console.log(JSON.stringify(r));`;

describe('freePort', () => {
  it('gives distinct ports, in this process and against another one asking at the same time', async () => {
    const theirs = new Promise<number[]>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', OTHER], (err, stdout) =>
        err ? reject(err) : resolve(JSON.parse(stdout) as number[]),
      ),
    );
    const mine: number[] = [];
    for (let i = 0; i < 100; i++) mine.push(await freePort());
    const all = [...mine, ...(await theirs)];
    expect(all).toHaveLength(200);
    expect(new Set(all).size).toBe(200);
  });
});
