// The NATS authorization the server renders, read as text (the integration test
// server-nats.test.ts holds a real cluster to it): the subject mapping of the contract's
// topics, and what each phone and server instance may do.
import { describe, expect, it } from 'vitest';
import bcrypt from 'bcryptjs';
import {
  hashPasswordBcrypt,
  isNatsDeviceId,
  natsAuthorization,
  natsSubject,
  topicOfSubject,
} from '../../provisioning/server/broker-auth.js';
import { intakeSubjects } from '../../provisioning/server/nats-intake.js';

describe('NATS authorization', () => {
  it('maps topics and filters to subjects and back', () => {
    expect(natsSubject('e911/v1/p1/address/set')).toBe('e911.v1.p1.address.set');
    expect(natsSubject('e911/v1/+/cmd/+')).toBe('e911.v1.*.cmd.*');
    expect(natsSubject('e911/v1/#')).toBe('e911.v1.>');
    expect(topicOfSubject('e911.v1.p1.address.state')).toBe('e911/v1/p1/address/state');
    // The server takes every phone kind but command responses, across phones.
    expect(intakeSubjects()).toEqual(expect.arrayContaining(['e911.v1.*.events', 'e911.v1.*.status', 'e911.v1.*.address.state']));
    expect(intakeSubjects().some((s) => s.includes('response'))).toBe(false);
  });

  it("refuses device ids a subject cannot carry (a dot) and the server users' names", () => {
    expect(isNatsDeviceId('phone-1_a')).toBe(true);
    expect(isNatsDeviceId('phone.1')).toBe(false);
    expect(isNatsDeviceId('e911-server-x')).toBe(false);
  });

  it('gives each phone its own subjects only, and leaves out the ids it cannot render', () => {
    const { conf, skipped } = natsAuthorization(
      [{ user: 'e911-server-a', bcrypt: '$2b$04$x' }],
      [
        { deviceId: 'p1', bcrypt: '$2b$04$y' },
        { deviceId: 'p.2', bcrypt: '$2b$04$z' },
      ],
    );
    expect(skipped).toEqual(['p.2']);
    const p1 = conf.split('\n').find((l) => l.includes('"p1"'))!;
    expect(p1).toContain('publish: { allow: [');
    expect(p1).toContain('"e911.v1.p1.events"');
    expect(p1).toContain('"e911.v1.p1.address.set"');
    expect(p1).toContain('"$MQTT.sub.>"');
    // Nothing of another phone's, no wildcard across phones.
    expect(p1).not.toMatch(/e911\.v1\.\*|e911\.v1\.>/);
    const server = conf.split('\n').find((l) => l.includes('e911-server-a'))!;
    expect(server).toContain('"e911.v1.>"');
    expect(conf).not.toContain('p.2');
  });

  it('hashes with bcrypt as NATS checks it', () => {
    const h = hashPasswordBcrypt('secret');
    expect(h).toMatch(/^\$2[aby]\$04\$/);
    expect(bcrypt.compareSync('secret', h)).toBe(true);
  });
});
