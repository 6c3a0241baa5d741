/**
 * The control worker's workflow code: workflows/index.ts, which the Temporal SDK bundles (webpack)
 * into the code its workflow sandboxes run. Without BERTH_WORKFLOW_BUNDLE the worker bundles it as
 * it starts (the native stack: edit, restart); an image bundles it once at build
 * (workers/bundle-workflows.ts) and its workers load that file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * The workflow interceptor modules bundled with the workflows (`interceptors.workflowModules` of a
 * worker that bundles as it starts; part of a prebuilt bundle): a workflow's end as a metric.
 */
export const WORKFLOW_INTERCEPTOR_MODULES = [fileURLToPath(new URL('../workflows/metrics-interceptor.ts', import.meta.url))];

/** Bundles workflows/ into `codePath` (made with its directory); resolves to the bundle's size in bytes. */
export async function writeWorkflowBundle(codePath: string): Promise<number> {
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES });
  await mkdir(dirname(codePath), { recursive: true });
  await writeFile(codePath, code);
  return Buffer.byteLength(code);
}
