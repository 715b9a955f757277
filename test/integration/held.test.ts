// HELD end to end over real HTTP on loopback: the reference server's endpoint
// (provisioning/server/held.ts, mounted in a real fastify) answers the agent's
// HELD client; the PIDF-LO inside validates against test/fixtures/pidf-schemas.
import fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heldRequest, locationRequestXml, parseHeldResponse } from '../../agent/location/held.js';
import { heldRoutes, answerHeld } from '../../provisioning/server/held.js';
import { checkPidfTexts } from '../helpers/pidf-check.js';
import { requires } from '../helpers/require.js';
import { sampleAddress } from '../helpers/address.js';

const civic = sampleAddress().civic;
const xmllint = requires('HELD: the PIDF-LO schema check', ['xmllint']);

describe('HELD', () => {
  let app: FastifyInstance;
  let url = '';
  const asked: string[] = [];

  beforeAll(async () => {
    app = fastify();
    await app.register(heldRoutes, {
      providerName: 'e911 reference server',
      locate: ({ ip }) => {
        asked.push(ip);
        return ip === '127.0.0.1' ? { civic, deviceUri: 'mac:020000000001', entity: 'tel:+14085550100' } : null;
      },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address() as { port: number };
    url = `http://127.0.0.1:${addr.port}/held`;
  });
  afterAll(() => app.close());

  it('answers a locationRequest with the civic address by value', async () => {
    const r = await heldRequest({ url, responseTimeMs: 2000 });
    expect(r).toEqual({ ok: true, civic, geo: null, method: 'Manual', locationUris: [] });
    expect(asked).toContain('127.0.0.1');
  });

  it.skipIf(xmllint.skip)('puts a schema-valid PIDF-LO in the response', async () => {
    const reply = await answerHeld(
      locationRequestXml('emergencyDispatch'),
      { ip: '127.0.0.1' },
      {
        providerName: 'e911 reference server',
        locate: () => ({ civic, deviceUri: 'mac:020000000001', entity: 'tel:+14085550100' }),
      },
    );
    const presence = /<presence[\s\S]*<\/presence>/.exec(reply.body)![0];
    const [check] = checkPidfTexts([`<?xml version="1.0" encoding="UTF-8"?>\n${presence}\n`]);
    expect(check!.schemaErrors).toBe('');
    expect(check!.namespaceErrors).toEqual([]);
    expect(check!.ok).toBe(true);
  });

  it('says notLocatable for a requester it does not know, and refuses bad requests', async () => {
    const who = { ip: '192.0.2.7' };
    const opts = { providerName: 'x', locate: () => null };
    expect(parseHeldResponse((await answerHeld(locationRequestXml(1000), who, opts)).body)).toMatchObject({
      ok: false,
      code: 'notLocatable',
    });
    expect(parseHeldResponse((await answerHeld('<nope', who, opts)).body)).toMatchObject({ ok: false, code: 'xmlError' });
    expect(parseHeldResponse((await answerHeld('<a xmlns="urn:x"/>', who, opts)).body)).toMatchObject({
      ok: false,
      code: 'unsupportedMessage',
    });
    const geoOnly = `<locationRequest xmlns="urn:ietf:params:xml:ns:geopriv:held"><locationType exact="true">geodetic</locationType></locationRequest>`;
    expect(parseHeldResponse((await answerHeld(geoOnly, { ip: '127.0.0.1' }, opts)).body)).toMatchObject({
      ok: false,
      code: 'cannotProvideLiType',
    });
    const wrongType = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(wrongType.status).toBe(415);
  });

  it('reports a dead LIS as a network error, not a location', async () => {
    const r = await heldRequest({ url: 'http://127.0.0.1:1/held', responseTimeMs: 500 });
    expect(r).toMatchObject({ ok: false, code: 'network' });
  });
});
