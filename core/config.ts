/**
 * Berth's configuration: every setting comes from a BERTH_* environment variable,
 * is parsed and validated once when a process starts, and is handed down as a
 * frozen, typed object. Nothing else in Berth reads process.env.
 */
import { BlockList, isIP } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { REPO_ROOT } from './source-root.js';
import { TlsFileError, certificateNames, keyMatchesCertificate, readPemFile, type PemKind } from './tls-files.js';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "500ms", "30s", "15m", "24h", "7d" into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * DURATION_UNITS[match[2]!]!;
}

class Reader {
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  string(name: string, fallback?: string): string {
    const value = this.raw(name) ?? fallback;
    if (value === undefined) throw new ConfigError(name, 'is required but not set');
    return value;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  matching(name: string, pattern: RegExp, description: string, fallback?: string): string {
    const value = this.string(name, fallback);
    if (!pattern.test(value)) throw new ConfigError(name, `must be ${description}, got "${value}"`);
    return value;
  }

  int(name: string, fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    if (!/^-?\d+$/.test(text)) throw new ConfigError(name, `must be an integer, got "${text}"`);
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(name, `must be an integer between ${min} and ${max}, got "${text}"`);
    }
    return value;
  }

  /** A decimal such as 0.05 or 2 (at most three decimals). */
  decimal(name: string, fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    if (!/^\d+(\.\d{1,3})?$/.test(text)) throw new ConfigError(name, `must be a number with at most three decimals, got "${text}"`);
    const value = Number(text);
    if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got "${text}"`);
    return value;
  }

  /** A comma-separated list; empty entries are dropped. */
  list(name: string, fallback: string[]): string[] {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    return text.split(',').map((e) => e.trim()).filter((e) => e !== '');
  }

  duration(name: string, fallback: string, { minMs = 1 } = {}): number {
    const text = this.raw(name) ?? fallback;
    const ms = parseDuration(text);
    if (ms === undefined) throw new ConfigError(name, `must be a duration such as 30s, 15m or 24h, got "${text}"`);
    if (ms < minMs) throw new ConfigError(name, `must be at least ${minMs}ms, got "${text}"`);
    return ms;
  }

  url(name: string, protocols: string[], fallback?: string): string {
    const text = this.string(name, fallback);
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw new ConfigError(name, `must be a URL, got "${text}"`);
    }
    if (!protocols.includes(parsed.protocol)) {
      throw new ConfigError(name, `must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
    }
    return text;
  }

  /** `true` or `false`; undefined when not set. */
  boolean(name: string): boolean | undefined {
    const text = this.raw(name);
    if (text === undefined) return undefined;
    if (text !== 'true' && text !== 'false') throw new ConfigError(name, `must be true or false, got "${text}"`);
    return text === 'true';
  }

  /** The PEM text of the file the variable names (read now), or undefined when not set. */
  pemFile(name: string, kind: PemKind): string | undefined {
    const path = this.raw(name);
    if (path === undefined) return undefined;
    try {
      return readPemFile(path, kind);
    } catch (error) {
      if (error instanceof TlsFileError) throw new ConfigError(name, error.message);
      throw error;
    }
  }

  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const text = this.raw(name) ?? fallback;
    if (!(values as readonly string[]).includes(text)) {
      throw new ConfigError(name, `must be one of ${values.join(', ')}, got "${text}"`);
    }
    return text as T;
  }
}

/** Host ids: lowercase letters, digits and dashes (host-a). */
export const HOST_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$/;

export interface DatabaseConfig {
  url: string;
}
export interface TemporalConfig {
  address: string;
  namespace: string;
  /** TLS to the frontend; null: plaintext (the native stack). */
  tls: TemporalTlsConfig | null;
  /** Sent as `Authorization: Bearer <key>` (Temporal Cloud API keys). A secret: never logged. */
  apiKey?: string;
}
/** PEM texts, read from the files the settings name when the configuration is loaded. */
export interface TemporalTlsConfig {
  /** The CA bundle the server's certificate is checked against; absent: the system's CAs. */
  ca?: string;
  /** This process's certificate and key, for a server that requires mutual TLS. */
  client?: CertKeyPair;
  /** The name the server's certificate must carry (and the SNI), when not the address's host. */
  serverName?: string;
}
export interface CertKeyPair {
  cert: string;
  key: string;
}
/** How a host worker reaches its Docker daemon. */
export interface DockerConfig {
  /** unix:///path/to/docker.sock or tcp://host:port. */
  endpoint: string;
  /** Mutual TLS with a tcp:// daemon (`dockerd --tlsverify`); null: the socket, or plain TCP allowed by BERTH_DOCKER_ALLOW_PLAIN_TCP. */
  tls: DockerTlsConfig | null;
}
/** PEM texts: the CA the daemon's certificate is checked against, and the certificate and key Berth presents. */
export interface DockerTlsConfig extends CertKeyPair {
  ca: string;
}
export interface HostsConfig {
  heartbeatIntervalMs: number;
  staleAfterMs: number;
}
export interface LogConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}
export interface MinioConfig {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
}

/**
 * A worker's own HTTP server (workers/ops-server.ts): /healthz and /readyz, for orchestrators'
 * health checks; port 0: no server.
 */
export interface OpsServerConfig {
  host: string;
  port: number;
}

/**
 * Traces exported over OTLP/HTTP (core/tracing.ts), from the standard OpenTelemetry variables:
 * on only when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set (and
 * OTEL_SDK_DISABLED is not true); null: off, nothing started.
 */
export interface TracingConfig {
  /** Where spans are POSTed: the traces endpoint as given, else the endpoint + /v1/traces. */
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  /** Sent with every export (OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS): may hold a secret, never logged. */
  headers: Record<string, string>;
  /** The resource's service.name: OTEL_SERVICE_NAME, else the process's own (berth-api, berth-worker-control, berth-worker-host-<id>). */
  serviceName: string;
}

/** DCU (Download-Compress-Upload) settings the API needs. */
export interface DcuApiConfig {
  bucket: string;
  /** Lifetime of a presigned download URL, in seconds. */
  downloadUrlTtlSeconds: number;
  /**
   * MinIO as the users' browsers reach it (BERTH_MINIO_PUBLIC_ENDPOINT, default BERTH_MINIO_ENDPOINT):
   * the API only presigns download URLs, and a presigned URL is valid for the host it names.
   * Without credentials the download route answers 503.
   */
  minio: MinioConfig | null;
  /** DCU tasks not yet completed or failed, per user, at most (beyond: 429). */
  maxInFlight: number;
  /** Stored DCU archives per user, in MB (compressed bytes of completed, unexpired tasks); at or beyond it a start is refused. */
  quotaMb: number;
  /** Minor units charged per started GB (GiB) of tar packaged, when the upload completes. */
  pricePerGb: number;
}
/** DCU cleanup schedules, created by the control worker. */
export interface DcuControlConfig {
  gzipCleanupCron: string;
  objectCleanupCron: string;
  gzipRetentionDays: number;
  objectRetentionDays: number;
}
/** DCU work on a host: where archives go, and the bucket and part size of uploads. */
export interface DcuHostConfig {
  gzipDir: string;
  bucket: string;
  partSizeBytes: number;
  /** The host refuses new DCU work when its archive directory's filesystem has less free than this, in MB. */
  minFreeMb: number;
}

export interface ApiConfig {
  log: LogConfig;
  database: DatabaseConfig;
  temporal: TemporalConfig;
  hosts: HostsConfig;
  host: string;
  port: number;
  admin: { username: string; password: string | undefined };
  tokenTtlMs: number;
  /** How long an authenticated credential is kept in the API's memory (0: looked up on every request); revocations reach it at once. */
  authCacheTtlMs: number;
  /** Login throttling: failed logins counted per username and per client address within a window. */
  login: LoginThrottleConfig;
  rateLimit: { max: number; windowMs: number };
  /** How long `?wait=true` waits for a workflow before answering 504. */
  waitTimeoutMs: number;
  dcu: DcuApiConfig;
  containers: ContainersConfig;
  registries: RegistryPolicyConfig;
  pulls: PullsConfig;
  /** Shared with host workers: authenticates the API to their log and stats endpoints. */
  internalToken: string;
  /** PEM: the CA bundle host workers' https:// stream endpoints are checked against; null: the system's CAs. */
  streamsCa: string | null;
  /** On SIGTERM, how long requests in flight get before their connections are closed. */
  shutdownGraceMs: number;
  streams: StreamsConfig;
  /** Origins (scheme://host[:port]) whose browsers may call the API; empty: no CORS headers at all. */
  corsOrigins: string[];
  /**
   * Addresses and CIDR ranges of reverse proxies whose X-Forwarded-For/-Proto/-Host the API
   * believes (the client's address, HTTPS for the session cookie's Secure flag and the CSRF
   * origin check); empty: none, the connection says it all.
   */
  trustProxy: string[];
  /** The web console's built files (index.html, assets/), served at `/`. */
  webDir: string;
  tracing: TracingConfig | null;
}

export interface LoginThrottleConfig {
  /** Failures for one username within the window beyond which login answers 429. */
  maxFailuresPerUser: number;
  /** Failures from one client address within the window beyond which login answers 429. */
  maxFailuresPerAddress: number;
  windowMs: number;
}

/** Bounds on log follows and stats sockets (counted per API process). */
export interface StreamsConfig {
  /** Log follows and stats sockets one user may hold open at once. */
  maxPerUser: number;
  /** A followed log with nothing sent, or a stats socket whose client sent nothing, this long is ended. */
  idleTimeoutMs: number;
}

/** Which registries users may pull from (issue: pulls must not probe the internal network). */
export interface RegistryPolicyConfig {
  /** Registry hosts ("docker.io", "registry.example:5000") users may pull from. */
  allowed: string[];
  /** Registries allowed although they are (or resolve to) loopback, link-local or private addresses. */
  internal: string[];
  /** Registries whose credentials serve admins only: other users may not pull from them. */
  adminOnly: string[];
}

export interface PullsConfig {
  /** Pulls in flight per user at most (beyond: 429). */
  maxConcurrentPerUser: number;
  /** Minor units per started MB of a pulled image: fixed by the API in each pull's input. */
  pricePerMb: number;
}

/** A container's price per billing period: base + per CPU + per GB of memory (minor units). */
export interface ContainerPrices {
  base: number;
  perCpu: number;
  perGbMemory: number;
}

export interface ContainersConfig {
  portRange: { from: number; to: number };
  minMemoryMb: number;
  defaultMemoryMb: number;
  maxMemoryMb: number;
  /** In thousandths of a CPU, as stored: Docker's NanoCpus is never 0 (unlimited). */
  minCpuMillis: number;
  defaultCpus: number;
  maxCpus: number;
  defaultPidsLimit: number;
  maxPidsLimit: number;
  maxPerUser: number;
  prices: ContainerPrices;
  billingPeriodMs: number;
  /** History events after which a container's workflow continues as new. */
  historyLimit: number;
}

export interface ControlWorkerConfig {
  log: LogConfig;
  database: DatabaseConfig;
  temporal: TemporalConfig;
  /** Minor units per started MB of an image, for pulls started before the API put the price in their input. */
  pricePerMb: number;
  dcu: DcuControlConfig;
  release: ReleaseConfig;
  audit: AuditRetentionConfig;
  shutdownGraceMs: number;
  /**
   * The workflow code bundled ahead of time (BERTH_WORKFLOW_BUNDLE, an absolute path to the file
   * workers/bundle-workflows.ts writes; images set it); null: bundled from workflows/ at start.
   */
  workflowBundle: string | null;
  /**
   * How many workflow runs the worker keeps in its cache (BERTH_MAX_CACHED_WORKFLOWS, the SDK's
   * maxCachedWorkflows; 0: none, every task replays its history); null: the SDK's default, sized
   * from the heap.
   */
  maxCachedWorkflows: number | null;
  ops: OpsServerConfig;
  tracing: TracingConfig | null;
}

/** The audit log's retention schedule (berth-audit-retention). */
export interface AuditRetentionConfig {
  /** Entries older than this many days are deleted, once a day. */
  retentionDays: number;
}

/** The nightly release schedule. */
export interface ReleaseConfig {
  cron: string;
  timezone: string;
  /** Removals in flight per host at most. */
  concurrency: number;
}

export interface RegistryCredential {
  username: string;
  password: string;
  /** Only admins' pulls may use them (the API refuses other users' pulls from that registry). */
  adminOnly?: boolean;
}

export interface HostWorkerConfig {
  log: LogConfig;
  database: DatabaseConfig;
  temporal: TemporalConfig;
  hosts: HostsConfig;
  hostId: string;
  docker: DockerConfig;
  minio: MinioConfig;
  /** Credentials per registry host ("127.0.0.1:5001", "docker.io"), used for pulls. */
  registryCredentials: Record<string, RegistryCredential>;
  /** A pull whose registry sends nothing for this long fails (a registry that accepts and never answers). */
  pullStallTimeoutMs: number;
  dcu: DcuHostConfig;
  /** Where the host worker serves container logs and stats to the API (port 0: any free port). */
  streams: StreamServerConfig;
  /** The address this host's containers publish their ports on. */
  publishIp: string;
  /** The host's firewall for containers on users' networks (workers/host-firewall.ts). */
  egress: EgressConfig;
  internalToken: string;
  shutdownGraceMs: number;
  ops: OpsServerConfig;
  tracing: TracingConfig | null;
}

export interface StreamServerConfig {
  host: string;
  port: number;
  /** The address the API reaches the endpoint at (the host of its advertised URL). */
  advertiseHost: string;
  /** PEM certificate and key: the endpoint serves HTTPS; null: plain HTTP (loopback, or BERTH_STREAMS_ALLOW_PLAIN=true). */
  tls: CertKeyPair | null;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function log(r: Reader): LogConfig {
  return { level: r.oneOf('BERTH_LOG_LEVEL', LOG_LEVELS, 'info') };
}

function database(r: Reader): DatabaseConfig {
  return { url: r.url('BERTH_DATABASE_URL', ['postgres:', 'postgresql:']) };
}

/**
 * A certificate and its private key, from two file settings: both or neither, and the key
 * must be the certificate's.
 */
function certKeyPair(r: Reader, certName: string, keyName: string): CertKeyPair | undefined {
  const cert = r.pemFile(certName, 'certificate');
  const key = r.pemFile(keyName, 'private key');
  if (cert === undefined && key === undefined) return undefined;
  if (key === undefined) throw new ConfigError(keyName, `is required with ${certName} (the certificate's private key)`);
  if (cert === undefined) throw new ConfigError(certName, `is required with ${keyName} (the key's certificate)`);
  if (!keyMatchesCertificate(cert, key)) throw new ConfigError(keyName, `is not the private key of the certificate in ${certName}`);
  return { cert, key };
}

const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * TLS is on when any TLS file, the server name or an API key is set (a key is never sent in
 * the clear), or when BERTH_TEMPORAL_TLS=true alone asks for it with the system's CAs
 * (Temporal Cloud); BERTH_TEMPORAL_TLS=false with any of them is a contradiction.
 */
function temporal(r: Reader): TemporalConfig {
  const address = r.matching('BERTH_TEMPORAL_ADDRESS', HOST_PORT, 'host:port', '127.0.0.1:7233');
  const namespace = r.string('BERTH_TEMPORAL_NAMESPACE', 'default');
  const forced = r.boolean('BERTH_TEMPORAL_TLS');
  const ca = r.pemFile('BERTH_TEMPORAL_TLS_CA', 'certificate');
  const client = certKeyPair(r, 'BERTH_TEMPORAL_TLS_CERT', 'BERTH_TEMPORAL_TLS_KEY');
  const serverName = r.optionalString('BERTH_TEMPORAL_TLS_SERVER_NAME');
  if (serverName !== undefined && !DNS_NAME.test(serverName)) {
    throw new ConfigError('BERTH_TEMPORAL_TLS_SERVER_NAME', `must be a DNS name such as temporal.example, got "${serverName}"`);
  }
  const apiKey = r.optionalString('BERTH_TEMPORAL_API_KEY');
  const needsTls = [
    ca !== undefined && 'BERTH_TEMPORAL_TLS_CA',
    client !== undefined && 'BERTH_TEMPORAL_TLS_CERT',
    serverName !== undefined && 'BERTH_TEMPORAL_TLS_SERVER_NAME',
    apiKey !== undefined && 'BERTH_TEMPORAL_API_KEY',
  ].filter((name): name is string => name !== false);
  if (forced === false && needsTls.length > 0) {
    throw new ConfigError('BERTH_TEMPORAL_TLS', `is false, but ${needsTls.join(' and ')} ${needsTls.length > 1 ? 'need' : 'needs'} TLS`);
  }
  const tls = (forced ?? needsTls.length > 0)
    ? { ...(ca !== undefined ? { ca } : {}), ...(client ? { client } : {}), ...(serverName !== undefined ? { serverName } : {}) }
    : null;
  return { address, namespace, tls, ...(apiKey !== undefined ? { apiKey } : {}) };
}

const DOCKER_TLS = ['BERTH_DOCKER_TLS_CA', 'BERTH_DOCKER_TLS_CERT', 'BERTH_DOCKER_TLS_KEY'] as const;

/**
 * The Docker endpoint. A tcp:// daemon is reached with mutual TLS (all three files, as
 * `dockerd --tlsverify` expects); plain TCP, which gives whoever reaches the port root on the
 * host, only when BERTH_DOCKER_ALLOW_PLAIN_TCP=true says so.
 */
function docker(r: Reader): DockerConfig {
  const name = 'BERTH_DOCKER_HOST';
  const endpoint = r.matching(name, /^(unix:\/\/\/|tcp:\/\/)/, 'unix:///path or tcp://host:port', 'unix:///var/run/docker.sock');
  const allowPlain = r.boolean('BERTH_DOCKER_ALLOW_PLAIN_TCP') ?? false;
  const given = DOCKER_TLS.filter((setting) => r.optionalString(setting) !== undefined);
  if (endpoint.startsWith('unix://')) {
    if (given.length > 0) throw new ConfigError(given[0]!, `applies to a tcp:// ${name} only (a unix socket has no TLS)`);
    return { endpoint, tls: null };
  }
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (!url || !url.hostname || !['', '/'].includes(url.pathname) || url.search || url.username) {
    throw new ConfigError(name, `must be tcp://host:port, got "${endpoint}"`);
  }
  if (given.length === 0) {
    if (allowPlain) return { endpoint, tls: null };
    throw new ConfigError(
      name,
      `${endpoint} without TLS is refused: set ${DOCKER_TLS.join(', ')} (the daemon runs with --tlsverify), or BERTH_DOCKER_ALLOW_PLAIN_TCP=true to accept an unauthenticated, unencrypted daemon`,
    );
  }
  const missing = DOCKER_TLS.find((setting) => !given.includes(setting));
  if (missing) throw new ConfigError(missing, `is required with ${given.join(' and ')}: Docker over TCP takes the CA, a client certificate and its key`);
  const ca = r.pemFile('BERTH_DOCKER_TLS_CA', 'certificate')!;
  const pair = certKeyPair(r, 'BERTH_DOCKER_TLS_CERT', 'BERTH_DOCKER_TLS_KEY')!;
  return { endpoint, tls: { ca, ...pair } };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: a plain endpoint there is reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  const family = isIP(bare);
  return family !== 0 && LOOPBACK.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The host worker's log and stats endpoint. It carries BERTH_INTERNAL_TOKEN and users' logs: off
 * a loopback address it serves HTTPS, unless BERTH_STREAMS_ALLOW_PLAIN=true says otherwise.
 */
function streamServer(r: Reader): StreamServerConfig {
  const host = r.string('BERTH_STREAMS_HOST', '127.0.0.1');
  const tls = certKeyPair(r, 'BERTH_STREAMS_TLS_CERT', 'BERTH_STREAMS_TLS_KEY') ?? null;
  const allowPlain = r.boolean('BERTH_STREAMS_ALLOW_PLAIN') ?? false;
  if (!tls && !allowPlain && !isLoopbackHost(host)) {
    throw new ConfigError(
      'BERTH_STREAMS_HOST',
      `"${host}" is not a loopback address: serving logs and stats there (the API sends BERTH_INTERNAL_TOKEN) needs BERTH_STREAMS_TLS_CERT and BERTH_STREAMS_TLS_KEY, or BERTH_STREAMS_ALLOW_PLAIN=true`,
    );
  }
  const advertiseHost = r.string('BERTH_STREAMS_ADVERTISE_HOST', host);
  // The API checks the certificate against the host in the URL this worker advertises.
  if (tls && !certificateNames(tls.cert, advertiseHost)) {
    throw new ConfigError(
      'BERTH_STREAMS_TLS_CERT',
      `is not valid for "${advertiseHost}", the host the API reaches this worker at (BERTH_STREAMS_ADVERTISE_HOST, else BERTH_STREAMS_HOST): the API would refuse it`,
    );
  }
  return { host, port: r.int('BERTH_STREAMS_PORT', 0, { min: 0, max: 65535 }), advertiseHost, tls };
}

function hosts(r: Reader): HostsConfig {
  const heartbeatIntervalMs = r.duration('BERTH_HOST_HEARTBEAT_INTERVAL', '5s', { minMs: 100 });
  const staleAfterMs = r.duration('BERTH_HOST_STALE_AFTER', '30s');
  if (staleAfterMs <= heartbeatIntervalMs) {
    throw new ConfigError('BERTH_HOST_STALE_AFTER', 'must be longer than BERTH_HOST_HEARTBEAT_INTERVAL');
  }
  return { heartbeatIntervalMs, staleAfterMs };
}

const MINIO_ENDPOINT = 'BERTH_MINIO_ENDPOINT';
const MINIO_PUBLIC_ENDPOINT = 'BERTH_MINIO_PUBLIC_ENDPOINT';
const DEFAULT_MINIO_ENDPOINT = 'http://127.0.0.1:9000';

/** A MinIO endpoint: scheme, host and port only (the client cannot address MinIO under a path). */
function minioEndpoint(r: Reader, name: string, fallback: string): Pick<MinioConfig, 'endPoint' | 'port' | 'useSSL'> {
  const endpoint = new URL(r.url(name, ['http:', 'https:'], fallback));
  if (endpoint.pathname !== '/' || endpoint.search || endpoint.hash || endpoint.username || endpoint.password) {
    throw new ConfigError(name, `must be scheme://host[:port] with no path, query or credentials, got "${endpoint.href}"`);
  }
  const useSSL = endpoint.protocol === 'https:';
  return {
    // new URL() keeps an IPv6 address in brackets; the client wants it bare.
    endPoint: endpoint.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: endpoint.port ? Number(endpoint.port) : useSSL ? 443 : 80,
    useSSL,
  };
}

function minio(r: Reader): MinioConfig {
  return {
    ...minioEndpoint(r, MINIO_ENDPOINT, DEFAULT_MINIO_ENDPOINT),
    accessKey: r.string('BERTH_MINIO_ACCESS_KEY'),
    secretKey: r.string('BERTH_MINIO_SECRET_KEY'),
  };
}

const REGISTRY_CREDENTIALS = 'BERTH_REGISTRY_CREDENTIALS';

/** BERTH_REGISTRY_CREDENTIALS as [registry, entry] pairs, each entry's adminOnly flag checked. */
function registryEntries(r: Reader): Array<[string, Record<string, unknown>]> {
  const name = REGISTRY_CREDENTIALS;
  const text = r.optionalString(name);
  if (text === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(name, 'must be JSON such as {"registry.example:5000": {"username": "u", "password": "p"}}');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(name, 'must be a JSON object keyed by registry host');
  }
  return Object.entries(parsed).map(([registry, value]) => {
    const entry = (value ?? {}) as Record<string, unknown>;
    if (entry.adminOnly !== undefined && typeof entry.adminOnly !== 'boolean') {
      throw new ConfigError(name, `entry "${registry}": adminOnly must be true or false`);
    }
    return [registry, entry];
  });
}

function registryCredentials(r: Reader): Record<string, RegistryCredential> {
  const result: Record<string, RegistryCredential> = {};
  for (const [registry, entry] of registryEntries(r)) {
    const { username, password, adminOnly } = entry as Partial<RegistryCredential>;
    if (typeof username !== 'string' || typeof password !== 'string' || !username) {
      throw new ConfigError(REGISTRY_CREDENTIALS, `entry "${registry}" needs a string username and password`);
    }
    result[registry.toLowerCase()] = { username, password, ...(adminOnly ? { adminOnly } : {}) };
  }
  return result;
}

function containers(r: Reader): ContainersConfig {
  const rangeText = r.matching('BERTH_PORT_RANGE', /^\d{1,5}-\d{1,5}$/, 'a range such as 20000-20999', '20000-20999');
  const [from, to] = rangeText.split('-').map(Number) as [number, number];
  if (from < 1 || to > 65535 || from > to) throw new ConfigError('BERTH_PORT_RANGE', `must lie within 1-65535 with from <= to, got "${rangeText}"`);
  const maxMemoryMb = r.int('BERTH_MAX_MEMORY_MB', 2048, { min: 6 });
  // Docker refuses less than 6 MB; a container that small cannot do anything useful either.
  const minMemoryMb = r.int('BERTH_MIN_MEMORY_MB', Math.min(16, maxMemoryMb), { min: 6, max: maxMemoryMb });
  const maxCpus = r.int('BERTH_MAX_CPUS', 2, { min: 1, max: 256 });
  // 0.01 CPU is the least the kernel's CFS quota can express (1 ms per 100 ms period).
  const minCpus = r.decimal('BERTH_MIN_CPUS', 0.05, { min: 0.01, max: maxCpus });
  const maxPidsLimit = r.int('BERTH_MAX_PIDS', 4096, { min: 16, max: 1_000_000 });
  return {
    portRange: { from, to },
    minMemoryMb,
    defaultMemoryMb: Math.max(minMemoryMb, Math.min(512, maxMemoryMb)),
    maxMemoryMb,
    minCpuMillis: Math.round(minCpus * 1000),
    defaultCpus: Math.min(1, maxCpus),
    maxCpus,
    defaultPidsLimit: r.int('BERTH_PIDS_LIMIT', Math.min(256, maxPidsLimit), { min: 16, max: maxPidsLimit }),
    maxPidsLimit,
    maxPerUser: r.int('BERTH_MAX_CONTAINERS_PER_USER', 10, { min: 1 }),
    // Defaults: a container of 1 CPU and 512 MB costs 4 + 4 + 2 = 10 per period, as the flat price did.
    prices: {
      base: r.int('BERTH_PRICE_PER_CONTAINER_HOUR', 4, { min: 0 }),
      perCpu: r.int('BERTH_PRICE_PER_CPU_HOUR', 4, { min: 0 }),
      perGbMemory: r.int('BERTH_PRICE_PER_GB_HOUR', 4, { min: 0 }),
    },
    billingPeriodMs: r.duration('BERTH_BILLING_PERIOD', '1h', { minMs: 1000 }),
    historyLimit: r.int('BERTH_CONTAINER_HISTORY_LIMIT', 2000, { min: 20 }),
  };
}

/** Registry hosts as image references name them: "docker.io", "registry.example:5000", "[::1]:5000". */
const REGISTRY_HOST = /^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/;

function registryList(r: Reader, name: string, fallback: string[]): string[] {
  const list = r.list(name, fallback).map((e) => e.toLowerCase());
  for (const entry of list) {
    if (!REGISTRY_HOST.test(entry)) throw new ConfigError(name, `"${entry}" is not a registry host such as docker.io or registry.example:5000`);
  }
  return [...new Set(list)];
}

/**
 * What the API needs of BERTH_REGISTRY_CREDENTIALS: the registries and their adminOnly flags.
 * Entries need no secrets here (`{"registry:5000": {"adminOnly": true}}`): the API never pulls.
 */
function registryFlags(r: Reader): Record<string, { adminOnly: boolean }> {
  return Object.fromEntries(registryEntries(r).map(([registry, entry]) => [registry.toLowerCase(), { adminOnly: entry.adminOnly === true }]));
}

/** Default: Docker Hub and the registries that have credentials; the native stack adds its own. */
function registries(r: Reader): RegistryPolicyConfig {
  const credentials = registryFlags(r);
  const withCredentials = Object.keys(credentials);
  const allowed = registryList(r, 'BERTH_ALLOWED_REGISTRIES', ['docker.io', ...withCredentials]);
  const internal = registryList(r, 'BERTH_INTERNAL_REGISTRIES', []);
  return {
    allowed: [...new Set([...allowed, ...internal])],
    internal,
    adminOnly: withCredentials.filter((registry) => credentials[registry]!.adminOnly),
  };
}

/** How a host worker confines containers on users' networks. */
export interface EgressConfig {
  /** `iptables`: install the rules at start (the worker stops if it cannot); `off`: Docker's network isolation only. */
  firewall: 'iptables' | 'off';
  /** IPv4 CIDRs containers may reach although they are private, link-local or loopback ("10.1.2.0/24"). */
  allowCidrs: string[];
}

const IPV4_CIDR = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/(3[0-2]|[12]?\d)$/;

function egress(r: Reader): EgressConfig {
  const name = 'BERTH_EGRESS_ALLOW_CIDRS';
  const text = r.optionalString(name);
  const allowCidrs = text === undefined ? [] : text.split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const cidr of allowCidrs) {
    if (!IPV4_CIDR.test(cidr)) throw new ConfigError(name, `must be comma-separated IPv4 CIDRs such as 10.1.2.0/24, got "${cidr}"`);
  }
  return { firewall: r.oneOf('BERTH_EGRESS_FIREWALL', ['iptables', 'off'] as const, 'iptables'), allowCidrs };
}

function internalToken(r: Reader): string {
  const token = r.string('BERTH_INTERNAL_TOKEN');
  if (token.length < 16) throw new ConfigError('BERTH_INTERNAL_TOKEN', 'must be at least 16 characters long');
  return token;
}

/** S3 bucket names: 3-63 lowercase letters, digits, dots and dashes. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** A cron expression of five fields, or a macro such as @daily (Temporal's syntax). */
const CRON = /^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every\s+\S+|[0-9A-Za-z*,/?-]+(\s+[0-9A-Za-z*,/?-]+){4})$/;
const MB = 1024 * 1024;

function dcuBucket(r: Reader): string {
  return r.matching('BERTH_DCU_BUCKET', BUCKET, 'an S3 bucket name (3-63 lowercase letters, digits, "." or "-")', 'berth-dcu');
}

/**
 * The API's MinIO, to presign download URLs for users' browsers: at BERTH_MINIO_PUBLIC_ENDPOINT
 * (an address browsers resolve, e.g. https://files.example.com), default BERTH_MINIO_ENDPOINT.
 * Both keys, or neither (null); one without the other is a mistake.
 */
function presigningMinio(r: Reader): MinioConfig | null {
  // Checked even without keys: the same settings configure the host workers.
  minioEndpoint(r, MINIO_ENDPOINT, DEFAULT_MINIO_ENDPOINT);
  const endpoint = minioEndpoint(r, MINIO_PUBLIC_ENDPOINT, r.optionalString(MINIO_ENDPOINT) ?? DEFAULT_MINIO_ENDPOINT);
  const access = r.optionalString('BERTH_MINIO_ACCESS_KEY');
  const secret = r.optionalString('BERTH_MINIO_SECRET_KEY');
  if (access === undefined && secret === undefined) return null;
  return { ...minio(r), ...endpoint };
}

/** Archives live under the stack's state directory (never in the repository), else under the OS temp dir. */
function dcuGzipDir(r: Reader): string {
  const name = 'BERTH_DCU_GZIP_DIR';
  const stateDir = r.optionalString('BERTH_STATE_DIR');
  let fallback: string;
  if (stateDir) fallback = join(stateDir, 'dcu');
  else {
    let home = '';
    try {
      home = homedir();
    } catch {
      // no home directory: the temp dir it is
    }
    fallback = home ? join(home, '.local', 'state', 'berth', 'dcu') : join(tmpdir(), 'berth-dcu');
  }
  const dir = r.string(name, fallback);
  if (!isAbsolute(dir)) throw new ConfigError(name, `must be an absolute path, got "${dir}"`);
  return dir;
}

function release(r: Reader): ReleaseConfig {
  const timezone = r.string('BERTH_RELEASE_TIMEZONE', 'UTC');
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    throw new ConfigError('BERTH_RELEASE_TIMEZONE', `must be an IANA time zone such as UTC or Europe/Paris, got "${timezone}"`);
  }
  return {
    cron: r.matching('BERTH_RELEASE_CRON', CRON, 'a cron expression such as "30 23 * * *"', '30 23 * * *'),
    timezone,
    concurrency: r.int('BERTH_RELEASE_CONCURRENCY', 8, { min: 1, max: 100 }),
  };
}

function dcuControl(r: Reader): DcuControlConfig {
  return {
    gzipCleanupCron: r.matching('BERTH_DCU_GZIP_CLEANUP_CRON', CRON, 'a cron expression such as "0 0 * * *"', '0 0 * * *'),
    objectCleanupCron: r.matching('BERTH_DCU_OBJECT_CLEANUP_CRON', CRON, 'a cron expression such as "0 0 * * 0"', '0 0 * * 0'),
    gzipRetentionDays: r.int('BERTH_DCU_GZIP_RETENTION_DAYS', 1, { min: 0, max: 3650 }),
    objectRetentionDays: r.int('BERTH_DCU_OBJECT_RETENTION_DAYS', 7, { min: 0, max: 3650 }),
  };
}

/**
 * BERTH_CORS_ORIGINS: exact origins such as https://console.example or http://127.0.0.1:3000,
 * as browsers send them in `Origin` (no path, no trailing slash, no wildcard).
 */
function corsOrigins(r: Reader): string[] {
  const name = 'BERTH_CORS_ORIGINS';
  const origins = r.list(name, []);
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError(name, `must be comma-separated origins such as https://console.example or http://127.0.0.1:3000, got "${origin}"`);
    }
  }
  return [...new Set(origins)];
}

/** BERTH_TRUST_PROXY: IP addresses and CIDR ranges (10.0.0.0/8, ::1) of trusted reverse proxies. */
function trustProxy(r: Reader): string[] {
  const name = 'BERTH_TRUST_PROXY';
  const entries = r.list(name, []);
  for (const entry of entries) {
    const [address, bits, ...rest] = entry.split('/');
    const family = isIP(address ?? '');
    const prefixOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (family === 0 || !prefixOk || rest.length > 0) {
      throw new ConfigError(name, `must be comma-separated IP addresses or CIDR ranges such as 127.0.0.1 or 10.0.0.0/8, got "${entry}"`);
    }
  }
  return [...new Set(entries)];
}

/** BERTH_WEB_DIR: the built console; default <repository>/web/dist (npm run web:build writes it). */
function webDir(r: Reader): string {
  const name = 'BERTH_WEB_DIR';
  const dir = r.string(name, join(REPO_ROOT, 'web', 'dist'));
  if (!isAbsolute(dir)) throw new ConfigError(name, `must be an absolute path, got "${dir}"`);
  return dir;
}

function auditRetention(r: Reader): AuditRetentionConfig {
  // At least a day: the table's trigger refuses any other deletion. At most 100 years.
  return { retentionDays: r.int('BERTH_AUDIT_RETENTION_DAYS', 365, { min: 1, max: 36_500 }) };
}

function shutdownGrace(r: Reader): number {
  return r.duration('BERTH_SHUTDOWN_GRACE', '30s');
}

/** BERTH_METRICS_HOST and BERTH_METRICS_PORT: a worker's health (and, later, metrics) server; port 0: none. */
function opsServer(r: Reader, defaultPort: number): OpsServerConfig {
  return {
    host: r.string('BERTH_METRICS_HOST', '127.0.0.1'),
    port: r.int('BERTH_METRICS_PORT', defaultPort, { min: 0, max: 65535 }),
  };
}

/** Where the control worker reads its prebuilt workflow bundle from, if anywhere. */
function workflowBundle(r: Reader): string | null {
  const name = 'BERTH_WORKFLOW_BUNDLE';
  const path = r.optionalString(name);
  if (path === undefined) return null;
  if (!isAbsolute(path)) throw new ConfigError(name, `must be an absolute path, got "${path}"`);
  return path;
}

/** BERTH_MAX_CACHED_WORKFLOWS: 0 (no cache) or at least 2 (the SDK's own rule); unset: null. */
function maxCachedWorkflows(r: Reader): number | null {
  const name = 'BERTH_MAX_CACHED_WORKFLOWS';
  if (r.optionalString(name) === undefined) return null;
  const value = r.int(name, 0);
  if (value === 1) throw new ConfigError(name, 'must be 0 (no cache) or at least 2, got "1"');
  return value;
}

const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;

/** An OTLP/HTTP URL: http(s), no credentials in it (they go in the headers settings, which are never echoed). */
function otlpUrl(r: Reader, name: string): string {
  const text = r.url(name, ['http:', 'https:']);
  const parsed = new URL(text);
  if (parsed.username || parsed.password) throw new ConfigError(name, 'must not carry credentials: put them in OTEL_EXPORTER_OTLP_HEADERS');
  return text;
}

/**
 * OTEL_EXPORTER_OTLP_HEADERS: `key=value` pairs, comma-separated, values percent-encoded (the
 * OpenTelemetry format). Values are often API keys: an error names the entry, never its value.
 */
function otlpHeaders(r: Reader, name: string): Record<string, string> {
  const text = r.optionalString(name);
  if (text === undefined) return {};
  const headers: Record<string, string> = {};
  for (const [index, entry] of text.split(',').entries()) {
    if (entry.trim() === '') continue;
    const at = entry.indexOf('=');
    const key = at > 0 ? entry.slice(0, at).trim() : '';
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) throw new ConfigError(name, `entry ${index + 1} is not key=value with a header name as key`);
    let value: string;
    try {
      value = decodeURIComponent(entry.slice(at + 1).trim());
    } catch {
      throw new ConfigError(name, `the value of ${key} is not valid percent-encoding`);
    }
    headers[key.toLowerCase()] = value;
  }
  return headers;
}

/**
 * Tracing, from the standard OpenTelemetry variables (so a collector's usual settings work as
 * they are): off unless an OTLP endpoint is set. The traces-specific variables win over the
 * general ones. Spans go over OTLP/HTTP, protobuf unless the protocol says http/json; gRPC is
 * not spoken (point it at the collector's HTTP port, 4318).
 */
function tracing(r: Reader, ownServiceName: string): TracingConfig | null {
  if (r.boolean('OTEL_SDK_DISABLED') === true) return null;
  const traces = r.optionalString('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined;
  if (!traces && r.optionalString('OTEL_EXPORTER_OTLP_ENDPOINT') === undefined) return null;
  const url = traces
    ? otlpUrl(r, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
    : `${otlpUrl(r, 'OTEL_EXPORTER_OTLP_ENDPOINT').replace(/\/+$/, '')}/v1/traces`;
  const protocolName = r.optionalString('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  return {
    url,
    protocol: r.oneOf(protocolName, OTLP_PROTOCOLS, 'http/protobuf'),
    headers: { ...otlpHeaders(r, 'OTEL_EXPORTER_OTLP_HEADERS'), ...otlpHeaders(r, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS') },
    serviceName: r.string('OTEL_SERVICE_NAME', ownServiceName),
  };
}

export function loadApiConfig(env: Env): Readonly<ApiConfig> {
  const r = new Reader(env);
  const password = r.optionalString('BERTH_ADMIN_PASSWORD');
  if (password !== undefined && password.length < 12) {
    throw new ConfigError('BERTH_ADMIN_PASSWORD', 'must be at least 12 characters long');
  }
  return deepFreeze({
    log: log(r),
    database: database(r),
    temporal: temporal(r),
    hosts: hosts(r),
    host: r.string('BERTH_API_HOST', '127.0.0.1'),
    port: r.int('BERTH_API_PORT', 8080, { min: 0, max: 65535 }),
    admin: {
      username: r.matching('BERTH_ADMIN_USERNAME', USERNAME, USERNAME_RULE, 'admin'),
      password,
    },
    tokenTtlMs: r.duration('BERTH_TOKEN_TTL', '24h', { minMs: 1000 }),
    authCacheTtlMs: r.duration('BERTH_AUTH_CACHE_TTL', '10s', { minMs: 0 }),
    login: {
      maxFailuresPerUser: r.int('BERTH_LOGIN_MAX_FAILURES_PER_USER', 5, { min: 1 }),
      maxFailuresPerAddress: r.int('BERTH_LOGIN_MAX_FAILURES_PER_ADDRESS', 20, { min: 1 }),
      windowMs: r.duration('BERTH_LOGIN_FAILURE_WINDOW', '15m', { minMs: 1000 }),
    },
    rateLimit: {
      max: r.int('BERTH_RATE_LIMIT_MAX', 120, { min: 1 }),
      windowMs: r.duration('BERTH_RATE_LIMIT_WINDOW', '1m', { minMs: 1000 }),
    },
    waitTimeoutMs: r.duration('BERTH_WAIT_TIMEOUT', '10m', { minMs: 1000 }),
    dcu: {
      bucket: dcuBucket(r),
      downloadUrlTtlSeconds: Math.floor(r.duration('BERTH_DCU_DOWNLOAD_URL_TTL', '15m', { minMs: 1000 }) / 1000),
      minio: presigningMinio(r),
      maxInFlight: r.int('BERTH_DCU_MAX_IN_FLIGHT', 2, { min: 1, max: 1000 }),
      quotaMb: r.int('BERTH_DCU_QUOTA_MB', 2048, { min: 0 }),
      pricePerGb: r.int('BERTH_DCU_PRICE_PER_GB', 10, { min: 0, max: 1_000_000_000 }),
    },
    containers: containers(r),
    registries: registries(r),
    pulls: {
      maxConcurrentPerUser: r.int('BERTH_MAX_PULLS_PER_USER', 3, { min: 1, max: 1000 }),
      pricePerMb: pricePerMb(r),
    },
    internalToken: internalToken(r),
    streamsCa: r.pemFile('BERTH_STREAMS_TLS_CA', 'certificate') ?? null,
    shutdownGraceMs: shutdownGrace(r),
    streams: {
      maxPerUser: r.int('BERTH_MAX_STREAMS_PER_USER', 10, { min: 1 }),
      idleTimeoutMs: r.duration('BERTH_STREAM_IDLE_TIMEOUT', '10m', { minMs: 1000 }),
    },
    corsOrigins: corsOrigins(r),
    trustProxy: trustProxy(r),
    webDir: webDir(r),
    tracing: tracing(r, 'berth-api'),
  });
}

/** BERTH_PRICE_PER_MB: the API fixes it in each pull; the control worker's is the price of pulls started before that. */
function pricePerMb(r: Reader): number {
  return r.int('BERTH_PRICE_PER_MB', 1, { min: 0, max: 1_000_000 });
}

export function loadMigrationConfig(env: Env): Readonly<{ database: DatabaseConfig }> {
  return deepFreeze({ database: database(new Reader(env)) });
}

/** The control worker's health server listens here unless BERTH_METRICS_PORT says otherwise. */
export const CONTROL_WORKER_OPS_PORT = 9470;

export function loadControlWorkerConfig(env: Env): Readonly<ControlWorkerConfig> {
  const r = new Reader(env);
  return deepFreeze({
    log: log(r),
    database: database(r),
    temporal: temporal(r),
    pricePerMb: pricePerMb(r),
    dcu: dcuControl(r),
    release: release(r),
    audit: auditRetention(r),
    shutdownGraceMs: shutdownGrace(r),
    workflowBundle: workflowBundle(r),
    maxCachedWorkflows: maxCachedWorkflows(r),
    ops: opsServer(r, CONTROL_WORKER_OPS_PORT),
    tracing: tracing(r, 'berth-worker-control'),
  });
}

export function loadHostWorkerConfig(env: Env): Readonly<HostWorkerConfig> {
  const r = new Reader(env);
  const hostId = r.matching('BERTH_HOST_ID', HOST_ID, 'lowercase letters, digits and dashes (e.g. host-a)');
  return deepFreeze({
    log: log(r),
    database: database(r),
    temporal: temporal(r),
    hosts: hosts(r),
    hostId,
    docker: docker(r),
    minio: minio(r),
    registryCredentials: registryCredentials(r),
    pullStallTimeoutMs: r.duration('BERTH_PULL_STALL_TIMEOUT', '20s', { minMs: 1000 }),
    dcu: {
      gzipDir: dcuGzipDir(r),
      bucket: dcuBucket(r),
      partSizeBytes: r.int('BERTH_DCU_PART_SIZE_MB', 16, { min: 5, max: 5120 }) * MB,
      minFreeMb: r.int('BERTH_DCU_MIN_FREE_MB', 1024, { min: 0 }),
    },
    streams: streamServer(r),
    internalToken: internalToken(r),
    publishIp: r.matching('BERTH_PUBLISH_IP', /^(\d{1,3}\.){3}\d{1,3}$/, 'an IPv4 address', '127.0.0.1'),
    egress: egress(r),
    shutdownGraceMs: shutdownGrace(r),
    // Off unless set: several host workers often share a machine, each needs a port of its own.
    ops: opsServer(r, 0),
    tracing: tracing(r, `berth-worker-host-${hostId}`),
  });
}

/** Usernames: what users type to log in. Shared by config (the admin) and the users API. */
export const USERNAME = /^[a-z0-9][a-z0-9_.-]{2,31}$/;
export const USERNAME_RULE = '3 to 32 characters: lowercase letters, digits, ".", "_" or "-", starting with a letter or digit';

function deepFreeze<T>(value: T): Readonly<T> {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** For process entry points: parse, or print the problem and exit. */
export function loadOrExit<T>(load: (env: Env) => T): T {
  try {
    return load(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`berth: invalid configuration: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
}
