/**
 * A throwaway PKI for TLS tests, made with the openssl CLI in a temporary directory (removed
 * after the test): two unrelated CAs, and certificates signed by the first. Nothing is committed:
 * private keys in the repository would be keys anyone has.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const openssl = (...args: string[]) => run('openssl', args);

/** Paths of a certificate and its key. */
export interface CertFiles {
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  /** The CA that signs `leaf()`'s certificates. */
  ca: CertFiles;
  /** A CA that signed nothing here: a client trusting only it refuses our certificates. */
  otherCa: CertFiles;
  /** A certificate signed by `ca` for these names (`IP:127.0.0.1`, `DNS:temporal.test`). */
  leaf(name: string, altNames: string[]): Promise<CertFiles>;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<CertFiles> {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  await openssl('req', '-x509', ...EC, '-keyout', files.key, '-out', files.cert, '-days', '2', '-subj', `/CN=berth-test-${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  return files;
}

/** Makes the PKI in a new temporary directory, removed after the test (`t.after`). */
export async function throwawayPki(t: { after: (fn: () => unknown) => void }): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ca = await makeCa(dir, 'ca');
  const otherCa = await makeCa(dir, 'other-ca');
  let serial = 1;
  return {
    dir,
    ca,
    otherCa,
    async leaf(name, altNames) {
      const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
      const csr = join(dir, `${name}.csr`);
      const ext = join(dir, `${name}.ext`);
      await writeFile(ext, `subjectAltName=${altNames.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
      await openssl('req', ...EC, '-keyout', files.key, '-out', csr, '-subj', `/CN=${name}`);
      await openssl('x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial++), '-days', '2', '-out', files.cert, '-extfile', ext);
      return files;
    },
  };
}
