// The embedded default broker (aedes, MQTT 3.1.1) for one-machine installs and demos.
// With an auth policy it enforces the same rules as the Mosquitto ACL the
// server renders (broker-auth.ts): a login's client id must be its user name
// (what use_username_as_clientid gives on Mosquitto: nobody takes over another
// client's session), phones their own topics, the server all of e911/v1.
// Without a policy it is open, as the dev script uses it.
import net from 'node:net';
import tls from 'node:tls';
import { Aedes, type AedesOptions, type Client } from 'aedes';
import { phoneMayPublish, phoneMaySubscribe, serverMayUse } from './broker-auth.js';

export interface EmbeddedBroker {
  port: number;
  url: string;
  /** The TLS listener's URL (mqtts://), when one was asked for. */
  tlsUrl: string | null;
  close(): Promise<void>;
}

/**
 * A second listener speaking MQTT over TLS, for phones across the network, while the plain one
 * stays on loopback for the server's own link. Same broker, same rules.
 */
export interface EmbeddedTlsListener {
  port: number;
  host?: string;
  /** The broker's certificate and key (PEM). */
  cert: string | Buffer;
  key: string | Buffer;
  /** The CA of clients' certificates (PEM). */
  ca?: string | Buffer;
  /** Refuse clients without a certificate from ca (the password login still applies). */
  requireCertificate?: boolean;
}

export type BrokerRole = 'server' | 'phone';

export interface BrokerAuth {
  /** The role of a user name and password, or null to refuse the connection. */
  authenticate(username: string, password: string): Promise<BrokerRole | null>;
  /** Told about each refusal, for the log. */
  refused?(what: string, username: string | undefined, detail: string): void;
}

const listen = (server: net.Server, port: number, host: string) =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as net.AddressInfo).port));
  });

const hostInUrl = (host: string) => (host.includes(':') ? `[${host}]` : host);

export async function startEmbeddedBroker(
  port: number,
  host = '127.0.0.1',
  auth?: BrokerAuth,
  tlsListener?: EmbeddedTlsListener,
): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker(auth ? withAuth(auth) : {});
  const server = net.createServer(broker.handle);
  const actual = await listen(server, port, host);
  let secure: tls.Server | null = null;
  let tlsUrl: string | null = null;
  if (tlsListener) {
    secure = tls.createServer(
      {
        cert: tlsListener.cert,
        key: tlsListener.key,
        ...(tlsListener.ca ? { ca: tlsListener.ca } : {}),
        minVersion: 'TLSv1.2',
        requestCert: tlsListener.requireCertificate === true,
        rejectUnauthorized: tlsListener.requireCertificate === true,
      },
      broker.handle,
    );
    const tlsHost = tlsListener.host ?? host;
    tlsUrl = `mqtts://${hostInUrl(tlsHost)}:${await listen(secure, tlsListener.port, tlsHost)}`;
  }
  return {
    port: actual,
    url: `mqtt://${hostInUrl(host)}:${actual}`,
    tlsUrl,
    close: () =>
      new Promise<void>((resolve) => {
        // aedes first: it disconnects its clients, without which server.close() waits for them forever.
        broker.close(() => server.close(() => (secure ? secure.close(() => resolve()) : resolve())));
      }),
  };
}

function withAuth(auth: BrokerAuth): AedesOptions {
  const roles = new WeakMap<Client, { role: BrokerRole; user: string }>();
  const notAuthorized = Object.assign(new Error('not authorized'), { returnCode: 5 as const });
  const badLogin = Object.assign(new Error('bad user name or password'), { returnCode: 4 as const });
  const badClientId = Object.assign(new Error('client id must be the user name'), { returnCode: 2 as const });
  return {
    authenticate(client, username, password, done) {
      if (!username || !password) {
        auth.refused?.('connect', username, 'no credentials');
        return done(notAuthorized, null);
      }
      auth.authenticate(username, password.toString('utf8')).then(
        (role) => {
          if (!role) {
            auth.refused?.('connect', username, 'bad credentials');
            return done(badLogin, null);
          }
          // Checked after the password, so the answer does not tell which user names exist.
          if (client.id !== username) {
            auth.refused?.('connect', username, `client id ${JSON.stringify(client.id)} is not the user name`);
            return done(badClientId, null);
          }
          roles.set(client, { role, user: username });
          done(null, true);
        },
        () => done(badLogin, null),
      );
    },
    authorizePublish(client, packet, done) {
      // A will aedes publishes after its client is gone was checked when the client connected.
      if (!client) return done(null);
      const who = roles.get(client);
      const ok = who && (who.role === 'server' ? serverMayUse(packet.topic) : phoneMayPublish(who.user, packet.topic));
      if (ok) return done(null);
      auth.refused?.('publish', who?.user, packet.topic);
      // aedes closes the connection of a client whose publish is refused.
      done(new Error(`publish to ${packet.topic} not authorized`));
    },
    authorizeSubscribe(client, sub, done) {
      const who = roles.get(client);
      const ok = who && (who.role === 'server' ? serverMayUse(sub.topic) : phoneMaySubscribe(who.user, sub.topic));
      if (!ok) auth.refused?.('subscribe', who?.user, sub.topic);
      // null: SUBACK 0x80 for this filter, the connection stays.
      done(null, ok ? sub : null);
    },
  };
}
