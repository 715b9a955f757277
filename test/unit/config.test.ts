import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config.js';
import { ConfigError } from '../../agent/errors.js';

const KEY = 'A'.repeat(43);
const minimal = { deviceId: 'phone-1', serverPublicKey: KEY, broker: { urls: ['mqtt://127.0.0.1:1883'] } };

function problems(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(raw, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => p.key);
  }
  return [];
}

describe('config', () => {
  it('fills defaults around the required keys', () => {
    const c = parseConfig(minimal);
    expect(c).toMatchObject({
      deviceId: 'phone-1',
      logLevel: 'info',
      dataDir: '/var/lib/e911-agent',
      broker: { protocolVersion: 5, subscribeQos: 1, publishQos: 1, keepaliveSec: 30 },
    });
    expect(c.outbox).toEqual({ maxEvents: 10_000, window: 64, serverAckTimeoutMs: 30_000, serverConfirms: 'all' });
    expect(c.recovery).toEqual({ minMs: 1000, maxMs: 60_000 });
  });

  it('lets the environment override the file', () => {
    const c = parseConfig(minimal, { E911_BROKER_URLS: 'mqtts://a:8883, mqtts://b:8883', E911_MQTT_VERSION: '4', E911_LOG_LEVEL: 'debug' });
    expect(c.broker.urls).toEqual(['mqtts://a:8883', 'mqtts://b:8883']);
    expect(c.broker.protocolVersion).toBe(4);
    expect(c.logLevel).toBe('debug');
  });

  it('subscribes at QoS 1 by default; 0 from the file or E911_MQTT_SUBSCRIBE_QOS; anything else refused', () => {
    expect(parseConfig(minimal).broker.subscribeQos).toBe(1);
    expect(parseConfig({ ...minimal, broker: { ...minimal.broker, subscribeQos: 0 } }).broker.subscribeQos).toBe(0);
    expect(parseConfig(minimal, { E911_MQTT_SUBSCRIBE_QOS: '0' }).broker.subscribeQos).toBe(0);
    // The environment wins over the file, as for every override.
    expect(
      parseConfig({ ...minimal, broker: { ...minimal.broker, subscribeQos: 1 } }, { E911_MQTT_SUBSCRIBE_QOS: '0' }).broker.subscribeQos,
    ).toBe(0);
    expect(problems({ ...minimal, broker: { ...minimal.broker, subscribeQos: 2 } })).toEqual(['broker.subscribeQos']);
    expect(problems({ ...minimal, broker: { ...minimal.broker, subscribeQos: '0' } })).toEqual(['broker.subscribeQos']);
    expect(problems(minimal, { E911_MQTT_SUBSCRIBE_QOS: '2' })).toEqual(['broker.subscribeQos (from E911_MQTT_SUBSCRIBE_QOS)']);
    expect(problems(minimal, { E911_MQTT_SUBSCRIBE_QOS: 'x' })).toEqual(['broker.subscribeQos (from E911_MQTT_SUBSCRIBE_QOS)']);
    expect(() => parseConfig(minimal, { E911_MQTT_SUBSCRIBE_QOS: 'x' })).toThrow(
      'broker.subscribeQos (from E911_MQTT_SUBSCRIBE_QOS): must be 0 or 1',
    );
  });

  it('publishes at QoS 1 by default; 0 from the file or E911_MQTT_PUBLISH_QOS, only while every event waits for events/ack', () => {
    expect(parseConfig(minimal).broker.publishQos).toBe(1);
    expect(parseConfig({ ...minimal, broker: { ...minimal.broker, publishQos: 0 } }).broker.publishQos).toBe(0);
    expect(parseConfig(minimal, { E911_MQTT_PUBLISH_QOS: '0' }).broker.publishQos).toBe(0);
    expect(problems({ ...minimal, broker: { ...minimal.broker, publishQos: 2 } })).toEqual(['broker.publishQos']);
    expect(problems(minimal, { E911_MQTT_PUBLISH_QOS: 'x' })).toEqual(['broker.publishQos (from E911_MQTT_PUBLISH_QOS)']);
    // At QoS 0 nothing but events/ack says an event arrived: 'emergency' would let the rest go unconfirmed.
    const unconfirmed = { ...minimal, outbox: { serverConfirms: 'emergency' } };
    expect(parseConfig(unconfirmed).broker.publishQos).toBe(1);
    expect(() => parseConfig(unconfirmed, { E911_MQTT_PUBLISH_QOS: '0' })).toThrow(
      "broker.publishQos (from E911_MQTT_PUBLISH_QOS): 0 needs outbox.serverConfirms 'all'",
    );
    expect(problems({ ...unconfirmed, broker: { ...minimal.broker, publishQos: 0 } })).toEqual(['broker.publishQos']);
  });

  it('publishes status and reports retained unless broker.retain or E911_MQTT_RETAIN says false', () => {
    expect(parseConfig(minimal).broker.retain).toBe(true);
    expect(parseConfig({ ...minimal, broker: { ...minimal.broker, retain: false } }).broker.retain).toBe(false);
    expect(parseConfig(minimal, { E911_MQTT_RETAIN: 'false' }).broker.retain).toBe(false);
    expect(parseConfig(minimal, { E911_MQTT_RETAIN: '0' }).broker.retain).toBe(false);
    expect(problems({ ...minimal, broker: { ...minimal.broker, retain: 'no' } })).toEqual(['broker.retain']);
    expect(problems(minimal, { E911_MQTT_RETAIN: 'maybe' })).toEqual(['broker.retain (from E911_MQTT_RETAIN)']);
  });

  it('names every bad key at once, and where an env value came from', () => {
    const keys = problems(
      { deviceId: 'bad id!', serverPublicKey: 'short', broker: { urls: ['http://x'], tls: { cert: '/c' } }, surprise: 1 },
      { E911_LOG_LEVEL: 'loud' },
    );
    expect(keys).toEqual(
      expect.arrayContaining(['deviceId', 'serverPublicKey', 'broker.urls.0', 'broker.tls', 'logLevel (from E911_LOG_LEVEL)', '(root)']),
    );
  });

  it('refuses a file that is not an object', () => {
    expect(problems([1, 2])).toEqual(['(file)']);
  });
});
