/** The workflows the control worker runs; each lives in its own file. */
export { pingHost } from './ping-host.js';
export { pullImage } from './pull-image.js';
export { removeImage } from './remove-image.js';
export { container } from './container.js';
export { dcu } from './dcu.js';
export { dcuGzipCleanup, dcuObjectCleanup } from './dcu-cleanup.js';
export { nightlyRelease } from './nightly-release.js';
export { auditRetention } from './audit-retention.js';
