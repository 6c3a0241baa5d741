/**
 * docker-compose.yml as Compose renders it: `docker-compose config` (Debian's docker-compose 1.29)
 * run with only PATH, HOME and the given variables in its environment (nothing inherited from the
 * test's own BERTH_* settings), and with an empty env file so that a developer's .env next to the
 * compose file cannot fill in what a test leaves out. Parsed with the YAML library docker-compose
 * itself depends on (python3-yaml), so that a test reads the file as Compose does.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The secrets the compose file requires (`${NAME:?...}`), with values its loaders accept. */
export const COMPOSE_SECRETS = {
  BERTH_ADMIN_PASSWORD: 'admin-password-for-tests',
  BERTH_POSTGRES_PASSWORD: 'postgres-password-for-tests',
  BERTH_MINIO_SECRET_KEY: 'minio-secret-for-tests',
  BERTH_INTERNAL_TOKEN: 'internal-token-for-tests-0123456789',
} as const;

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string | number | boolean | null>;
  healthcheck?: { test: string[] | string; interval?: string; timeout?: string; retries?: number; start_period?: string };
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  volumes?: string[];
  user?: string;
  restart?: string;
}

export interface ComposeConfig {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** Runs docker-compose with `args` on the repository's compose file; rejects on a non-zero exit. */
export async function compose(args: string[], vars: Record<string, string>) {
  const scratch = await mkdtemp(join(tmpdir(), 'berth-compose-'));
  try {
    const envFile = join(scratch, 'empty.env');
    await writeFile(envFile, '');
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...vars };
    return await run('docker-compose', ['-f', 'docker-compose.yml', '--env-file', envFile, ...args], { cwd: ROOT, env });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** `docker-compose config` with `vars`, as text and parsed. */
export async function renderCompose(vars: Record<string, string>): Promise<{ text: string; config: ComposeConfig }> {
  const { stdout: text } = await compose(['config'], vars);
  const { stdout: json } = await new Promise<{ stdout: string }>((resolve, reject) => {
    const child = execFile(
      'python3',
      ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
      { maxBuffer: 16 * 1024 * 1024 },
      (error, stdout) => (error ? reject(new Error(`parsing the rendered compose file failed: ${error.message}`)) : resolve({ stdout })),
    );
    child.stdin!.end(text);
  });
  return { text, config: JSON.parse(json) as ComposeConfig };
}

/**
 * A service's environment as its process gets it: every value a string (Compose passes numbers
 * and booleans as their text; an empty value stays empty, which Berth's loaders read as unset).
 */
export function processEnv(service: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(service.environment ?? {})) {
    if (value === null) throw new Error(`${name} has no value in the rendered compose file`);
    env[name] = String(value);
  }
  return env;
}
