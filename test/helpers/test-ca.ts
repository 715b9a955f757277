// A certificate authority made by a test with openssl (Debian's openssl): a CA, and
// certificates it signs for a server (subjectAltName) or a client. Nothing is trusted beyond
// the test that made it.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM file). */
  cert: string;
  key: string;
  /** A server certificate for these subjectAltNames (`IP:127.0.0.1`, `DNS:localhost`). */
  server(name: string, altNames: string[]): { cert: string; key: string };
  /** A client certificate (extendedKeyUsage clientAuth). */
  client(name: string): { cert: string; key: string };
}

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeTestCa(dir: string, name = 'e911-test-ca'): TestCa {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl([
    'req',
    '-x509',
    ...newKey,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  let serial = 1;
  const issue = (leaf: string, ext: string) => {
    const leafKey = path.join(dir, `${leaf}.key`);
    const leafCert = path.join(dir, `${leaf}.crt`);
    const csr = path.join(dir, `${leaf}.csr`);
    const extFile = path.join(dir, `${leaf}.ext`);
    writeFileSync(extFile, ext);
    openssl(['req', ...newKey, '-subj', `/CN=${leaf}`, '-keyout', leafKey, '-out', csr]);
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      cert,
      '-CAkey',
      key,
      '-set_serial',
      String(serial++),
      '-days',
      '2',
      '-extfile',
      extFile,
      '-out',
      leafCert,
    ]);
    return { cert: leafCert, key: leafKey };
  };
  return {
    dir,
    cert,
    key,
    server: (leaf, altNames) =>
      issue(leaf, `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=${altNames.join(',')}\n`),
    client: (leaf) => issue(leaf, 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n'),
  };
}
