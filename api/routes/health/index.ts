/** /healthz: the process is up. /readyz: the database and Temporal answer, else 503. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { sql } from 'drizzle-orm';
import type { Client } from '@temporalio/client';
import type { Database } from '../../../db/client.js';
import { rootMessage } from '../../../core/errors.js';

const Check = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('down')]), error: Type.Optional(Type.String()) });
const Ready = Type.Object({ status: Type.String(), checks: Type.Object({ database: Check, temporal: Check }) });

async function check(probe: () => Promise<unknown>, timeoutMs = 2000) {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs}ms`)), timeoutMs);
      }),
    ]);
    return { status: 'ok' as const };
  } catch (error) {
    return { status: 'down' as const, error: rootMessage(error) };
  } finally {
    clearTimeout(timer);
  }
}

const health: FastifyPluginAsyncTypebox<{ db: Database; temporal: Client }> = async (app, { db, temporal }) => {
  app.get(
    '/healthz',
    { config: { public: true }, schema: { tags: ['health'], response: { 200: Type.Object({ status: Type.String() }) } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    { config: { public: true }, schema: { tags: ['health'], response: { 200: Ready, 503: Ready } } },
    async (_request, reply) => {
      const [database, temporalCheck] = await Promise.all([
        check(() => db.execute(sql`select 1`)),
        check(() => temporal.connection.workflowService.getSystemInfo({})),
      ]);
      const ready = database.status === 'ok' && temporalCheck.status === 'ok';
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: { database, temporal: temporalCheck } });
    },
  );
};

export default health;
