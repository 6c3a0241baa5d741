/** The workflows the control worker runs; each lives in its own file. */
export { pingHost } from './ping-host.js';
