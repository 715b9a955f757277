// e911ctl calls: one line per emergency or test call, with its RTP figures.
import { describe, expect, it } from 'vitest';
import { callLine, callsText } from '../../../agent/cli/e911ctl.js';

describe('e911ctl calls', () => {
  const base = { callRef: 'c1', kind: 'emergency' as const, dialed: '911', startedAt: '2026-12-03T20:00:00.000Z', route: 'primary' };

  it('shows the media figures of an ended call', () => {
    const line = callLine({
      ...base,
      state: 'ended',
      media: { rtpSent: 500, rtpReceived: 480, rtpLost: 3, rtpLostByPeer: 1, jitterMs: 1.25, jitterMaxMs: 6 },
    });
    expect(line).toBe(
      '2026-12-03T20:00:00.000Z EMERGENCY 911 ended via primary; RTP sent 500, received 480, lost 3 (peer lost 1), jitter 1.3 ms (max 6.0)',
    );
  });

  it('says when there are no figures yet, or none at all', () => {
    expect(callLine({ ...base, kind: 'test', dialed: '933', state: 'answered', media: null })).toContain(
      'test 933 answered via primary; media: not yet',
    );
    expect(callLine({ ...base, state: 'ended', media: null })).toContain('media: none');
    expect(callsText([])).toBe('no emergency or test calls since the agent started');
  });
});
