// The emergency-call event builder (agent/emergency/call-event.ts): pure, no I/O.
// The row committed before the INVITE must carry the same facts as the event
// recorded after it, for every address state.
import { describe, expect, it } from 'vitest';
import {
  beginRowJson,
  beginRowParts,
  callEventData,
  firstSent,
  type EmergencyCallRecord,
  type PreparedFacts,
} from '../../agent/emergency/call-event.js';
import { localTimeWithOffset } from '../../agent/emergency/device.js';
import type { InviteContent } from '../../agent/emergency/invite.js';
import { parseRoute } from '../../agent/emergency/sip-uri.js';
import type { StoredAddress } from '../../agent/store/store.js';
import { sampleAddress } from '../helpers/address.js';

const at = new Date('2026-11-22T08:00:00.000Z');
const routes = [parseRoute('primary', 'sip:192.0.2.10'), parseRoute('fallback', 'sip:192.0.2.30;transport=tcp')];
const stored: StoredAddress = {
  doc: sampleAddress(),
  version: 7,
  hash: 'h',
  signature: 's',
  receivedAt: at.toISOString(),
  appliedAt: at.toISOString(),
};
const civic = { country: 'US', A1: 'CA', RD: 'Main' };
const device = { deviceId: 'phone-1', network: { interface: 'eth0', ip: '192.0.2.50', mac: '00:d0:1e:12:34:56' } };
const site = {
  extension: '2101',
  ip: '192.0.2.50',
  interface: 'eth0',
  switch: { chassisId: 'aa:bb:cc:00:00:01', portId: 'ge-0/0/7', portDescr: 'desk 7', sysName: 'sw1' },
};

function facts(over: Partial<PreparedFacts>): PreparedFacts {
  return {
    invite: { staticHeaders: [], from: null, pidf: null, cidDomain: 'localhost', audioAttributes: [] },
    address: null,
    where: null,
    alternate: null,
    alternateSent: null,
    elin: null,
    callbackSource: null,
    plan: routes,
    civicSent: null,
    callback: null,
    displayName: null,
    locationCode: null,
    language: null,
    ...over,
  };
}

// The builder only asks whether a PIDF-LO is there: any object stands for one.
const withPidf = { staticHeaders: [], from: null, pidf: {} as never, cidDomain: 'example.net', audioAttributes: [] };

const cases: { name: string; prepared: PreparedFacts; content: InviteContent | null }[] = [
  { name: 'no address, no location', prepared: facts({}), content: null },
  {
    name: 'provisioned address',
    prepared: facts({
      invite: withPidf,
      address: stored,
      where: { civic, method: 'Manual', source: 'provisioned' },
      civicSent: civic,
      callback: '+14085550100',
      callbackSource: 'provisioned',
      displayName: 'Front Desk',
      locationCode: 'B1-210',
    }),
    content: { headers: [], parts: [], pidf: '<presence/>', contentId: 'loc-1@example.net', audioAttributes: [] },
  },
  {
    name: 'network location with a disagreeing alternate, ELIN callback',
    prepared: facts({
      invite: withPidf,
      address: stored,
      where: { civic, method: 'LLDP-MED', source: 'lldp' },
      alternate: { civic: { country: 'US', A1: 'NV' }, method: 'Manual', source: 'provisioned' },
      alternateSent: { country: 'US', A1: 'NV' },
      civicSent: civic,
      elin: '4085550199',
      callback: '+14085550199',
      callbackSource: 'elin',
    }),
    content: { headers: [], parts: [], pidf: '<presence/>', contentId: 'loc-2@example.net', audioAttributes: [] },
  },
];

function record(over: Partial<EmergencyCallRecord> = {}): EmergencyCallRecord {
  return {
    callRef: 'ref-1',
    kind: 'emergency',
    dialed: '9911',
    number: '911',
    startedAt: at.toISOString(),
    addressMissing: false,
    state: 'trying',
    attempts: [],
    plan: ['primary', 'fallback'],
    otherCalls: { held: [], ended: [] },
    ...over,
  };
}

describe('emergency call event', () => {
  it.each(cases)("the row before the INVITE has the event's fields, minus what only the call tells: $name", ({ prepared, content }) => {
    const rec = record({ addressMissing: prepared.address === null });
    const row = JSON.parse(
      beginRowJson(
        beginRowParts(prepared, device, 'America/Los_Angeles'),
        rec.callRef,
        rec.dialed,
        rec.number,
        content?.contentId ?? null,
        at,
        true,
        site,
      ),
    ) as Record<string, unknown>;
    const full = callEventData({
      record: rec,
      dialed: rec.dialed,
      number: rec.number,
      content,
      prepared,
      at,
      error: null,
      sipCallId: 'abc@host',
      device,
      site,
      timeZone: 'America/Los_Angeles',
      registered: true,
    });
    const { pidf: _pidf, ...fullLocation } = (full.location ?? {}) as Record<string, unknown>;
    expect(row).toEqual({
      ...full,
      sipCallId: null,
      placed: null,
      route: null,
      location: full.location === null ? null : fullLocation,
      recorded: 'before-invite',
    });
    expect(Object.keys(row)).toEqual([...Object.keys(full), 'recorded']);
  });

  it('names the location, the device and the time', () => {
    const c = cases[2]!;
    const data = callEventData({
      record: record(),
      dialed: '9911',
      number: '911',
      content: c.content,
      prepared: c.prepared,
      at,
      error: null,
      sipCallId: null,
      device,
      timeZone: 'UTC',
      registered: false,
    });
    expect(data.location).toEqual({
      source: 'lldp',
      method: 'LLDP-MED',
      addressVersion: 7,
      civic,
      alternate: { source: 'provisioned', method: 'Manual', civic: { country: 'US', A1: 'NV' } },
      pidf: '<presence/>',
      contentId: 'loc-2@example.net',
    });
    expect(data.device).toEqual({ deviceId: 'phone-1', ip: '192.0.2.50', mac: '00:d0:1e:12:34:56', interface: 'eth0' });
    expect(data.time).toEqual({ utc: '2026-11-22T08:00:00.000Z', local: localTimeWithOffset(at), timeZone: 'UTC' });
    expect(data).toMatchObject({ callback: '+14085550199', callbackSource: 'elin', elin: '4085550199', registered: false, placed: true });
  });

  it.each([
    { name: 'placed', error: null, dropped: false, placed: true, hasError: false },
    { name: 'failed on every route', error: 'every route failed', dropped: false, placed: false, hasError: true },
    { name: 'sent without the alternate', error: null, dropped: true, placed: true, hasError: false },
  ])('outcome: $name', ({ error, dropped, placed, hasError }) => {
    const c = cases[2]!;
    const rec = record(dropped ? { alternateDropped: true } : {});
    const data = callEventData({
      record: rec,
      dialed: '9911',
      number: '911',
      content: c.content,
      prepared: c.prepared,
      at,
      error,
      sipCallId: null,
      device,
      timeZone: 'UTC',
      registered: true,
    });
    expect(data.placed).toBe(placed);
    expect('error' in data).toBe(hasError);
    expect((data.location as Record<string, unknown>).alternateDropped).toBe(dropped ? true : undefined);
  });

  it.each([
    { name: 'none tried', attempts: [], route: undefined },
    {
      name: 'the first that left, not one that threw',
      attempts: [
        { route: 'primary' as const, callId: null },
        { route: 'fallback' as const, callId: 3 },
      ],
      route: 'fallback',
    },
    {
      name: 'the first tried when none left',
      attempts: [
        { route: 'primary' as const, callId: null },
        { route: 'fallback' as const, callId: null },
      ],
      route: 'primary',
    },
  ])('the attempt the event names: $name', ({ attempts, route }) => {
    const rec = record({
      attempts: attempts.map((a) => ({ ...a, routeUri: 'sip:x', target: 'sip:911@x', startedAt: at.toISOString(), provisional: false })),
    });
    expect(firstSent(rec)?.route).toBe(route);
  });

  it("the row's text survives quotes and control characters in the dialed string", () => {
    const row = beginRowJson(beginRowParts(facts({}), device, 'UTC'), 'r"1', 'urn:service:sos"\n', '911', null, at, false);
    expect(JSON.parse(row)).toMatchObject({ callRef: 'r"1', numberDialed: 'urn:service:sos"\n', location: null });
  });
});
