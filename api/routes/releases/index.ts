import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ReleaseService } from '../../../services/releases.js';
import { pageRequest } from '../../../repositories/paging.js';
import { requireAdmin } from '../../plugins/auth.js';
import { DateTime, Pagination, authErrors, problemResponses } from '../../schemas.js';

const Counts = Type.Union([Type.Object({ removed: Type.Integer(), failed: Type.Integer() }), Type.Null()]);
const Run = Type.Object({
  id: Type.String(),
  status: Type.String(),
  startedAt: DateTime,
  endedAt: Type.Union([DateTime, Type.Null()]),
  refundedTotal: Type.Integer(),
  containers: Counts,
  images: Counts,
});
const Overview = Type.Object({
  schedule: Type.Union([
    Type.Object({
      id: Type.String(),
      paused: Type.Boolean(),
      note: Type.Union([Type.String(), Type.Null()]),
      timezone: Type.String(),
      nextRuns: Type.Array(DateTime),
    }),
    Type.Null(),
  ]),
  items: Type.Array(Run),
  total: Type.Integer(),
}, { $id: 'ReleaseOverview', description: 'The nightly release schedule (null until the control worker made it) and its runs' });
const Failure = Type.Object({ phase: Type.String(), id: Type.String(), hostId: Type.String(), reason: Type.String() });
const RunDetail = Type.Object({ ...Run.properties, failures: Type.Array(Failure) }, { $id: 'ReleaseRunDetail', description: 'One release run and its failures' });

const releases: FastifyPluginAsyncTypebox<{ releases: ReleaseService }> = async (app, { releases }) => {
  app.addSchema(Overview);
  app.addSchema(RunDetail);
  app.get(
    '/',
    {
      schema: {
        operationId: 'listReleases',
        tags: ['admin'],
        summary: "The nightly release schedule (next runs, paused?) and its runs, newest first (admin)",
        querystring: Pagination,
        response: { 200: Type.Ref('ReleaseOverview'), ...problemResponses(400, 403), ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      return releases.overview(pageRequest(request.query));
    },
  );

  app.post(
    '/',
    {
      schema: {
        operationId: 'triggerRelease',
        tags: ['admin'],
        summary: 'Run the nightly release now (admin); a release already running is not doubled',
        response: { 202: Type.Object({ triggered: Type.Boolean() }), ...problemResponses(403, 503), ...authErrors },
      },
    },
    async (request, reply) => {
      requireAdmin(request);
      await releases.trigger();
      return reply.code(202).send({ triggered: true });
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        operationId: 'getRelease',
        tags: ['admin'],
        summary: 'One release: counts, refunded total and each failure with its reason (admin)',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) }),
        response: { 200: Type.Ref('ReleaseRunDetail'), ...problemResponses(400, 403, 404), ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      return releases.get(request.params.id);
    },
  );
};

export default releases;
