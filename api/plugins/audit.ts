/**
 * The audit of API requests: every mutating request (POST, PUT, PATCH, DELETE) that reached a
 * route, logins included (failed ones too), is appended to the audit log once answered: who
 * (user, API key or anonymous), the operation id, the target, the status, the request id and
 * the client address. What the system does to users' things is audited by the workflows.
 */
import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import type { AuditEntry, AuditService } from '../../services/audit.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The resource a route acts on, from its path: /api/v1/containers/:id/stop → container. */
export function targetTypeOf(url: string): string | null {
  const segments = url.replace(/^\/api\/(v1\/)?/, '').split('/').filter((s) => s && !s.startsWith(':') && s !== 'admin');
  // The caller's own things: /users/me/api-keys → api_key, /users/me/password → user.
  const own = segments[0] === 'users' && segments[1] === 'me' ? segments[2] : undefined;
  const segment = own && own !== 'password' ? own : segments[0];
  if (!segment) return null;
  if (segment === 'auth') return 'user';
  return segment === 'dcu' ? 'dcu_task' : segment.replace(/ies$/, 'y').replace(/s$/, '').replace(/-/g, '_');
}

export function auditEntryOf(request: FastifyRequest, status: number): AuditEntry {
  const url = request.routeOptions.url ?? request.url;
  const params = (request.params ?? {}) as Record<string, unknown>;
  const principal = request.principal;
  const user = principal?.user ?? null;
  const operationId = (request.routeOptions.schema)?.operationId;
  const paramId = [params.id, params.task_id, params.taskId].find((v): v is string => typeof v === 'string');
  const targetType = targetTypeOf(url);
  // A login names its user by username (who may not exist): kept as the target, never the password.
  const loginName = url.endsWith('/auth/login') ? (request.body as { username?: unknown } | undefined)?.username : undefined;
  const targetId = paramId ?? (typeof loginName === 'string' ? loginName.slice(0, 64) : null);
  return {
    actorType: principal?.kind === 'api_key' ? 'api_key' : user ? 'user' : 'anonymous',
    actorUserId: user?.id ?? null,
    apiKeyId: principal?.kind === 'api_key' ? principal.keyId : null,
    action: operationId ?? `${request.method} ${url}`,
    targetType,
    targetId,
    subjectUserId: targetType === 'user' && paramId && !url.includes('/me') ? paramId : (user?.id ?? null),
    outcome: status < 400 ? 'success' : 'failure',
    status,
    requestId: String(request.id),
    clientIp: request.ip,
  };
}

export default fp<{ audit: Pick<AuditService, 'append'> }>(
  async (app, { audit }) => {
    app.addHook('onResponse', async (request, reply) => {
      if (!MUTATING.has(request.method) || request.is404 || !request.routeOptions.url) return;
      try {
        await audit.append([auditEntryOf(request, reply.statusCode)]);
      } catch (error) {
        request.log.error({ err: error }, 'audit entry not written');
      }
    });
  },
  { name: 'audit' },
);
