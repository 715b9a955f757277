// A TCP relay between a phone and its broker that reads (and may hold back) what the broker
// sends the phone, packet by packet: what a test cannot see or break inside a real broker.
import net from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

export interface MqttRelay {
  /** mqtt://127.0.0.1:PORT: give it to the phone as its broker. */
  url: string;
  /** Connections the relay accepted (a phone that reconnects makes another). */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Passes everything; each packet from the broker to the phone is shown to `fromBroker` first,
 * and is dropped when it returns false (as a broker under load, or a route between nodes, may
 * lose a QoS 0 message while the connection stays up). `fromPhone`, if given, does the same
 * the other way.
 */
export async function startMqttRelay(
  brokerPort: number,
  fromBroker: (p: Packet) => boolean,
  protocolVersion: 4 | 5 = 4,
  fromPhone?: (p: Packet) => boolean,
): Promise<MqttRelay> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((phone) => {
    connections++;
    const up = net.connect(brokerPort, '127.0.0.1');
    const parser = mqttPacket.parser({ protocolVersion });
    parser.on('packet', (p) => {
      if (fromBroker(p)) phone.write(mqttPacket.generate(p, { protocolVersion }));
    });
    up.on('data', (d: Buffer) => parser.parse(d));
    if (fromPhone) {
      const phoneParser = mqttPacket.parser({ protocolVersion });
      phoneParser.on('packet', (p) => {
        if (fromPhone(p)) up.write(mqttPacket.generate(p, { protocolVersion }));
      });
      phone.on('data', (d: Buffer) => phoneParser.parse(d));
    } else {
      phone.pipe(up);
    }
    for (const sock of [phone, up]) {
      sockets.add(sock);
      sock.on('error', () => undefined);
      sock.on('close', () => {
        phone.destroy();
        up.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const sock of sockets) sock.destroy();
      }),
  };
}
