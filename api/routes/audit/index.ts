/** The audit log for admins: every entry, filtered and paged. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuditService } from '../../../services/audit.js';
import { pageRequest } from '../../../repositories/paging.js';
import { requireAdmin } from '../../plugins/auth.js';
import { authErrors, problemResponses } from '../../schemas.js';
import { AuditPage, AuditQuery } from './schemas.js';

const audit: FastifyPluginAsyncTypebox<{ audit: Pick<AuditService, 'all'> }> = async (app, { audit }) => {
  app.get(
    '/',
    {
      schema: {
        operationId: 'listAuditEntries',
        tags: ['audit'],
        summary: 'The audit log, newest first (admin): who did what, and what the system did to whose things',
        querystring: AuditQuery,
        response: { 200: AuditPage, ...problemResponses(400, 403), ...authErrors },
      },
    },
    async (request) => {
      requireAdmin(request);
      const { page, pageSize, ...filter } = request.query;
      return { ...(await audit.all(filter, pageRequest({ page, pageSize }))), page, pageSize };
    },
  );
};

export default audit;
