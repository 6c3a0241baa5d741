/** Applies db/migrations to BERTH_DATABASE_URL: `npm run migrate` (and `stack.sh up`). */
import { fileURLToPath } from 'node:url';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { loadMigrationConfig, loadOrExit } from '../core/config.js';
import { connectDatabase } from './client.js';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));

export async function applyMigrations(url: string): Promise<void> {
  const handle = connectDatabase(url, { max: 1 });
  try {
    await migrate(handle.db, { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await handle.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = loadOrExit(loadMigrationConfig);
  await applyMigrations(config.database.url);
  process.stdout.write('migrations applied\n');
}
