// The command line's help text and its options (node:util parseArgs).
export const HELP = `usage: e911-server <command> [options]

Server (local):
  run [--data DIR] [--store URL] [--port N] [--host H] [--http-port N] [--http-host H]
      [--broker URL [--mqtt-version 4|5] [--share-group NAME] [--instance NAME] [--broker-username U --broker-password P]
                    [--broker-ca FILE] [--broker-cert FILE --broker-key FILE]]   mqtts://: the broker's CA, a client certificate
      [--broker URL,URL,URL --nats nats://HOST:PORT,...]   a NATS cluster: MQTT 3.1.1 to its nodes' MQTT URLs,
                                               phones' reports through a NATS queue group on their native ports
      [--offline-after SEC]                    a phone silent this long is marked offline (agents' heartbeatSec below it)
      [--resend-after SEC]                     an address a phone online has not applied is sent again after this (60; 0: never)
      [--allow-anonymous] [--seed FILE]        start the server; without --broker an embedded broker listens on --port
      [--mqtt-tls-port N [--mqtt-tls-host H] --mqtt-tls-cert F --mqtt-tls-key F [--mqtt-tls-ca F --require-client-cert]]
                                               the embedded broker's TLS listener for phones (plain stays on --host)
      [--portal-dir DIR | --no-portal]         the admin portal at http://HOST:PORT/ (built into dist/portal)
      [--tls-cert FILE --tls-key FILE]         serve the API and portal over HTTPS (session cookies Secure)
      [--secure-cookies] [--allowed-origin URL,...]  behind a TLS proxy: Secure cookies, the proxy's public origin
      [--allow-notify-target HOST|CIDR,...]    SMS/webhook targets allowed although loopback, link-local or private
      [--sip-host H] [--sip-public-host H] [--sip-port N] [--rtp-port N]
                                               where security-desk calls go out from (default 0.0.0.0:5062, RTP 4100)
  keygen                                       print the signing public key (phones' serverPublicKey)
  token create NAME | list | revoke ID [--account ID]
                                               admin API tokens (a new token is printed once) of one customer
                                               account (created if new); without --account: the default
                                               account's, a provider token (may create accounts over the API)
  broker-config --out DIR [--dir /etc/mosquitto/e911] [--instance NAME,...] [--listen [HOST:]PORT,...]
                [--tls-listen [HOST:]PORT,... --tls-certfile F --tls-keyfile F --tls-cafile F [--require-client-cert]]
                                               write Mosquitto passwd, acl and mosquitto.conf (listeners bind
                                               client id to user) for the phones and every server instance
  broker-config --nats-auth --out DIR [--instance NAME,...]
                                               write nats-auth.conf (users and permissions per phone) for every
                                               NATS node to include; reload: nats-server --signal reload=PID
  push --broker URL --address FILE [--instance NAME] [--mqtt-version 4|5]
                                               sign and push one raw address document, logged in as the
                                               broker user e911-server-cli (or e911-server-NAME) from DIR

Admin API (over HTTP: --url URL, default http://127.0.0.1:8080; --token T or E911_SERVER_TOKEN or DIR/admin-token):
  accounts list | create ID [--name N] | token ID --name NAME
                                               customer accounts, and an account's admin token (a provider token)
  account show | set [--name N] [--contact-email E] [--recommendations on|off] [--policy all|app-only|app-then-email-sms]
                [--location-policy network-first|provisioned-first|ask-user] [--elin-callback on|off]
  e911 enable | disable
  notifications show | set --file F | test --channel email|sms|webhook|call [--to X]
  locations list | show ID | create --file F | update ID --file F | delete ID | validate --file F
  users list [--location ID] | show ID | create --file F | update ID --file F | delete ID
  phones list [--not-acknowledged] | show DEVICE | credentials DEVICE | push DEVICE | delete DEVICE
  bulk-emails --emails a@x,b@y (--all | --location ID | --users 1,2,3) [--wait]
  jobs list | show ID [--wait]
  csv export [--out FILE] | validate FILE | apply UPLOAD_ID [--all-or-nothing] [--wait]
  events [--type emergency-call,test-call] [--device ID] [--limit N] | event ID
  audit [--entity E] [--entity-id ID] [--limit N]
  openapi                                      print the OpenAPI document
`;

export const OPTIONS = {
  data: { type: 'string' },
  store: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'http-port': { type: 'string' },
  'http-host': { type: 'string' },
  'portal-dir': { type: 'string' },
  'no-portal': { type: 'boolean' },
  broker: { type: 'string' },
  nats: { type: 'string' },
  'nats-auth': { type: 'boolean' },
  'offline-after': { type: 'string' },
  'resend-after': { type: 'string' },
  'mqtt-version': { type: 'string' },
  'share-group': { type: 'string' },
  instance: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'secure-cookies': { type: 'boolean' },
  'allowed-origin': { type: 'string' },
  'allow-notify-target': { type: 'string' },
  'sip-host': { type: 'string' },
  'sip-public-host': { type: 'string' },
  'sip-port': { type: 'string' },
  'rtp-port': { type: 'string' },
  listen: { type: 'string' },
  'broker-ca': { type: 'string' },
  'broker-cert': { type: 'string' },
  'broker-key': { type: 'string' },
  'tls-listen': { type: 'string' },
  'mqtt-tls-port': { type: 'string' },
  'mqtt-tls-host': { type: 'string' },
  'mqtt-tls-cert': { type: 'string' },
  'mqtt-tls-key': { type: 'string' },
  'mqtt-tls-ca': { type: 'string' },
  'tls-cafile': { type: 'string' },
  'tls-certfile': { type: 'string' },
  'tls-keyfile': { type: 'string' },
  'require-client-cert': { type: 'boolean' },
  'broker-username': { type: 'string' },
  'broker-password': { type: 'string' },
  'allow-anonymous': { type: 'boolean' },
  seed: { type: 'string' },
  address: { type: 'string' },
  out: { type: 'string' },
  dir: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  account: { type: 'string' },
  file: { type: 'string' },
  name: { type: 'string' },
  'contact-email': { type: 'string' },
  recommendations: { type: 'string' },
  policy: { type: 'string' },
  'location-policy': { type: 'string' },
  'elin-callback': { type: 'string' },
  channel: { type: 'string' },
  to: { type: 'string' },
  location: { type: 'string' },
  emails: { type: 'string' },
  all: { type: 'boolean' },
  'all-or-nothing': { type: 'boolean' },
  'not-acknowledged': { type: 'boolean' },
  users: { type: 'string' },
  wait: { type: 'boolean' },
  type: { type: 'string' },
  device: { type: 'string' },
  limit: { type: 'string' },
  entity: { type: 'string' },
  'entity-id': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
