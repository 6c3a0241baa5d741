/**
 * The repository's root, whether this code runs as TypeScript from the repository (`node --import
 * tsx`) or as the JavaScript `npm run build:js` writes under dist/js/ (the host worker does:
 * workers/host-worker.sh). Paths to files that are not compiled (workflows/*.ts, which the
 * control worker bundles; web/dist) start here.
 */
import { fileURLToPath } from 'node:url';

/** Where `npm run build:js` writes the compiled tree, relative to the repository's root. */
export const COMPILED_DIR = 'dist/js';

const compiled = !import.meta.url.endsWith('.ts');

/** This file is core/source-root.ts, or dist/js/core/source-root.js once compiled. */
export const REPO_ROOT = fileURLToPath(new URL(compiled ? '../../..' : '..', import.meta.url));
