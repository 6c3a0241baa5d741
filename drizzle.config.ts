import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema.ts',
  out: './db/migrations',
  dbCredentials: { url: process.env.BERTH_DATABASE_URL ?? 'postgres://localhost/berth' },
  strict: true,
});
