import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../provisioning/server/run-config.js';
import { ConfigError } from '../../provisioning/common/errors.js';

function problems(flags: Record<string, string | boolean>, env: NodeJS.ProcessEnv = {}): { key: string; reason: string }[] {
  try {
    parseRunConfig(flags, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('accepted');
}

describe('e911-server run options', () => {
  it('defaults, flags over environment, typed values', () => {
    expect(parseRunConfig({}, {})).toMatchObject({ mqttPort: 1883, mqttHost: '127.0.0.1', httpPort: 8080, httpHost: '127.0.0.1' });
    const c = parseRunConfig(
      { 'http-port': '9000', 'mqtt-version': '5', 'allowed-origin': 'https://a, https://b' },
      { E911_HTTP_PORT: '1', E911_MQTT_PORT: '2883' },
    );
    expect(c).toMatchObject({ httpPort: 9000, mqttPort: 2883, mqttVersion: 5, allowedOrigins: ['https://a', 'https://b'] });
  });

  it('names every bad key at once, with the flag or variable it came from', () => {
    const p = problems(
      { port: 'eighty', 'mqtt-version': '6', 'tls-cert': 'c.pem', 'mqtt-tls-port': '8883', broker: 'http://x' },
      { E911_HTTP_PORT: '70000' },
    );
    expect(p).toEqual(
      expect.arrayContaining([
        { key: '--port', reason: 'must be a port number' },
        { key: 'E911_HTTP_PORT', reason: 'must be 0..65535' },
        { key: '--mqtt-version', reason: 'must be 4 or 5' },
        { key: '--broker', reason: expect.stringMatching(/mqtt:\/\//) },
      ]),
    );
    // The schema's refinements run only once the fields parse: fix them and the pairs are named.
    const pairs = problems({ 'tls-cert': 'c.pem', 'mqtt-tls-port': '8883', 'broker-key': 'k' });
    expect(pairs).toEqual(
      expect.arrayContaining([
        { key: '--tls-key', reason: 'required with tlsCert' },
        { key: '--mqtt-tls-cert', reason: 'required with mqttTlsPort' },
        { key: '--mqtt-tls-key', reason: 'required with mqttTlsPort' },
        { key: '--broker-cert', reason: 'required with brokerKey' },
      ]),
    );
  });

  it('the error message lists each key on its own line', () => {
    expect(() => parseRunConfig({ port: '-1', 'http-port': 'x' }, {})).toThrow(
      /invalid configuration:\n {2}--port: must be 0\.\.65535\n {2}--http-port: must be a port number/,
    );
  });

  it("a NATS cluster: several MQTT URLs, the nodes' native URLs, the silence timeout", () => {
    const c = parseRunConfig(
      { broker: 'mqtt://n1:1883, mqtt://n2:1883', nats: 'nats://n1:4222,nats://n2:4222', 'offline-after': '180' },
      {},
    );
    expect(c).toMatchObject({
      broker: ['mqtt://n1:1883', 'mqtt://n2:1883'],
      nats: ['nats://n1:4222', 'nats://n2:4222'],
      offlineAfterSec: 180,
    });
    expect(problems({ nats: 'nats://n1:4222' })).toEqual([{ key: '--broker', reason: expect.stringMatching(/required with --nats/) }]);
    expect(problems({ broker: 'mqtt://n1', nats: 'http://n1' })).toEqual([{ key: '--nats', reason: 'must be nats:// or tls:// URLs' }]);
  });

  it('the resend wait: seconds from the flag or E911_RESEND_AFTER_SEC, 0 turning resends off, unset leaving the default', () => {
    expect(parseRunConfig({ 'resend-after': '0' }, {}).resendAfterSec).toBe(0);
    expect(parseRunConfig({}, { E911_RESEND_AFTER_SEC: '120' }).resendAfterSec).toBe(120);
    expect(parseRunConfig({}, {}).resendAfterSec).toBeUndefined();
    expect(problems({ 'resend-after': 'soon' })).toEqual([{ key: '--resend-after', reason: 'must be a number of seconds' }]);
  });
});
