/**
 * Bundles the workflow code once, for images: `node --import tsx workers/bundle-workflows.ts OUT.js`.
 * Workers started with BERTH_WORKFLOW_BUNDLE=OUT.js load it (`workflowBundle: { codePath }`)
 * instead of running webpack at every start.
 */
import { isAbsolute, resolve } from 'node:path';
import { writeWorkflowBundle } from './workflow-code.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node --import tsx workers/bundle-workflows.ts OUT.js\n');
  process.exit(2);
}
const path = isAbsolute(out) ? out : resolve(out);
const started = Date.now();
const bytes = await writeWorkflowBundle(path);
process.stdout.write(`workflow bundle: ${path} (${Math.round(bytes / 1024)} KiB in ${Date.now() - started} ms)\n`);
