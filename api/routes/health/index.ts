/** /healthz: the process is up. /readyz: the database and Temporal answer, else 503. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Readiness } from '../../../services/readiness.js';

const Check = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('down')]), error: Type.Optional(Type.String()) });
const Ready = Type.Object(
  { status: Type.String(), checks: Type.Object({ database: Check, temporal: Check }) },
  { $id: 'Readiness', description: 'Whether the database and Temporal answer' },
);

const health: FastifyPluginAsyncTypebox<{ readiness: Readiness }> = async (app, { readiness }) => {
  app.addSchema(Ready);

  app.get(
    '/healthz',
    {
      config: { public: true },
      schema: { operationId: 'getHealth', tags: ['health'], summary: 'The process is up', response: { 200: Type.Object({ status: Type.String() }) } },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'The database and Temporal answer (200), or which does not (503)',
        response: { 200: Type.Ref('Readiness'), 503: Type.Ref('Readiness') },
      },
    },
    async (_request, reply) => {
      const { ready, checks } = await readiness.check();
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
    },
  );
};

export default health;
