/**
 * core/source-root.ts: the repository's root from the TypeScript source (tsx), and from the
 * JavaScript `npm run build:js` writes under dist/js/ (the host worker's way: workers/host-worker.sh).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { COMPILED_DIR, REPO_ROOT } from '../../core/source-root.js';

const exec = promisify(execFile);

test('from source, the root is the directory holding package.json and core/', () => {
  assert.ok(existsSync(join(REPO_ROOT, 'package.json')));
  assert.ok(existsSync(join(REPO_ROOT, 'core', 'source-root.ts')));
});

test('compiled as build:js compiles it (esbuild, under dist/js/), the root is the same repository root', async () => {
  const root = await realpath(await mkdtemp(join(tmpdir(), 'berth-source-root-')));
  try {
    const out = join(root, COMPILED_DIR);
    await exec(join(REPO_ROOT, 'node_modules', '.bin', 'esbuild'), ['core/source-root.ts', `--outdir=${out}`, '--outbase=.', '--platform=node', '--format=esm', '--log-level=warning'], { cwd: REPO_ROOT });
    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', `import { REPO_ROOT } from ${JSON.stringify(join(out, 'core', 'source-root.js'))}; process.stdout.write(REPO_ROOT);`]);
    assert.equal(stdout.replace(/\/$/, ''), root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
