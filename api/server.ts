/** The API process: parse config, connect, create the admin at first start, listen. */
import { loadApiConfig, loadOrExit } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { connectTemporal } from '../core/temporal.js';
import { startTracing } from '../core/tracing.js';
import { connectDatabase } from '../db/client.js';
import { createUserService } from '../services/users.js';
import { buildApp } from './app.js';

const config = loadOrExit(loadApiConfig);
const logger = createLogger('api', config.log);
const tracing = startTracing(config.tracing, { logger });
const database = connectDatabase(config.database.url);

const bootstrap = createUserService({ db: database.db });
const admin = await bootstrap.ensureAdmin(config.admin.username, config.admin.password).catch((error: unknown) => {
  process.stderr.write(`berth: invalid configuration: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(78);
});
if (admin === 'created') logger.info({ username: config.admin.username }, 'admin created');

const temporal = await connectTemporal(config.temporal, { tracing });
const app = await buildApp({ config, db: database.db, temporal, logger, tracing });

let closing = false;
async function shutdown(signal: string) {
  if (closing) return;
  closing = true;
  logger.info({ signal }, 'shutting down');
  // Requests in flight get the grace time; then the connections left (followed logs, event
  // streams, stats sockets) are closed so that the process can end.
  setTimeout(() => app.server.closeAllConnections(), config.shutdownGraceMs).unref();
  await app.close(); // stops accepting, lets in-flight requests finish
  await temporal.connection.close();
  await database.close();
  await tracing?.shutdown();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

await app.listen({ host: config.host, port: config.port });
