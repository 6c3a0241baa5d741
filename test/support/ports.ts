/** Ports for tests and benches that need one nothing listens on. */
export { freePort } from '../../core/ports.js';
