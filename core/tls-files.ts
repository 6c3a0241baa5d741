/**
 * PEM files named by BERTH_*_TLS_* settings: read once when the configuration is loaded, and
 * checked there, so that a missing, unreadable or wrong file stops the process with a message
 * naming its variable instead of failing at the first connection. core/config.ts turns a
 * `TlsFileError` into a ConfigError.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export class TlsFileError extends Error {
  override name = 'TlsFileError';
}

export type PemKind = 'certificate' | 'private key';

const FS_REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a component of the path is not a directory',
};

/** The text of the file at `path`, or a TlsFileError saying why it cannot be read. */
function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    throw new TlsFileError(`cannot read "${path}": ${FS_REASONS[code] ?? (code || 'unreadable')}`);
  }
}

/**
 * The PEM text of a certificate (or CA bundle) or private key file. A certificate file must hold
 * at least one certificate Node can parse; a key file an unencrypted private key.
 */
export function readPemFile(path: string, kind: PemKind): string {
  const text = readText(path);
  if (kind === 'certificate') {
    if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new TlsFileError(`"${path}" holds no PEM certificate`);
    try {
      new X509Certificate(text);
    } catch {
      throw new TlsFileError(`"${path}" holds no certificate that can be parsed`);
    }
  } else {
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new TlsFileError(`"${path}" holds no PEM private key`);
    try {
      createPrivateKey(text);
    } catch {
      throw new TlsFileError(`"${path}" holds no private key that can be used (an encrypted key is not supported)`);
    }
  }
  return text;
}

/** Whether `keyPem` is the private key of (the first certificate in) `certPem`. */
export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

/** Whether (the first certificate in) `certPem` is valid for `host`, an IP address or a DNS name, as a TLS client checks it. */
export function certificateNames(certPem: string, host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  try {
    const cert = new X509Certificate(certPem);
    return (isIP(bare) ? cert.checkIP(bare) : cert.checkHost(bare)) !== undefined;
  } catch {
    return false;
  }
}
