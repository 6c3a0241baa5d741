/**
 * Builds the Fastify app from its dependencies; api/server.ts only listens.
 * External plugins first, then Berth's plugins, then one plugin per resource.
 */
import Fastify, { type FastifyBaseLogger } from 'fastify';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Client } from '@temporalio/client';
import { runWithRequestId } from '../core/request-context.js';
import type { ApiConfig } from '../core/config.js';
import { AppError } from '../core/errors.js';
import { serializeError, type Database } from '../db/client.js';
import { createUserService } from '../services/users.js';
import { createAuthService } from '../services/auth.js';
import { createCredentialCache } from '../services/credential-cache.js';
import { createAuditService } from '../services/audit.js';
import { createHostService } from '../services/hosts.js';
import { createImageService } from '../services/images.js';
import { createPullService } from '../services/pulls.js';
import { createWorkflowRuns } from '../services/workflow-runs.js';
import { createRegistryPolicy } from '../services/registry-policy.js';
import { createContainerService } from '../services/containers.js';
import { createDcuService } from '../services/dcu.js';
import { createHostStreamClient } from '../services/host-streams.js';
import { minioClient } from '../core/minio.js';
import problems, { frameworkErrors } from './plugins/problems.js';
import input, { formatSchemaErrors, requestId, validatorFactory } from './plugins/input.js';
import auth from './plugins/auth.js';
import browserSession from './plugins/browser-session.js';
import { webConsole } from './plugins/web-console.js';
import audit from './plugins/audit.js';
import metrics from './plugins/metrics.js';
import { tracingPlugin } from './plugins/tracing.js';
import type { Tracing } from '../core/tracing.js';
import { Problem } from './schemas.js';
import healthRoutes from './routes/health/index.js';
import authRoutes from './routes/auth/index.js';
import userRoutes from './routes/users/index.js';
import adminUserRoutes from './routes/users/admin.js';
import accountRoutes from './routes/account/index.js';
import auditRoutes from './routes/audit/index.js';
import { AuditEntry } from './routes/audit/schemas.js';
import { ApiKey, CreatedApiKey, Session } from './routes/account/schemas.js';
import { AdminUser } from './routes/users/schemas.js';
import hostRoutes from './routes/hosts/index.js';
import imageRoutes from './routes/images/index.js';
import containerRoutes from './routes/containers/index.js';
import dcuRoutes from './routes/dcu/index.js';
import containerStreamRoutes from './routes/containers/streams.js';
import releaseRoutes from './routes/releases/index.js';
import { createReleaseService } from '../services/releases.js';
import { createReadiness } from '../services/readiness.js';
import { createGaugeService } from '../services/gauges.js';
import { LIMITS, countLimited } from '../core/metrics.js';

export interface AppDeps {
  config: Pick<
    ApiConfig,
    | 'tokenTtlMs'
    | 'authCacheTtlMs'
    | 'database'
    | 'login'
    | 'rateLimit'
    | 'hosts'
    | 'waitTimeoutMs'
    | 'containers'
    | 'registries'
    | 'pulls'
    | 'internalToken'
    | 'streamsCa'
    | 'dcu'
    | 'streams'
    | 'corsOrigins'
    | 'trustProxy'
    | 'webDir'
  >;
  db: Database;
  temporal: Client;
  /** A pino logger; tests leave it out and get no logs. */
  logger?: FastifyBaseLogger;
  /** The process's tracing (core/tracing.ts); absent or null: no spans. */
  tracing?: Tracing | null;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The API answers JSON and text, never pages: nothing may load, run, frame or submit. */
const API_CSP = {
  'default-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
};

/**
 * Swagger UI at /docs (set by the swagger-ui plugin on its own routes only): scripts, styles,
 * fonts and images from /docs itself, "Try it out" calls to this origin. No inline script
 * (`@fastify/swagger-ui`'s csp.json lists no hash); inline styles are allowed, as Swagger UI's
 * bundle applies one.
 */
const DOCS_CSP = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'", 'data:'],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'", "'unsafe-inline'"],
};

export async function buildApp(deps: AppDeps) {
  const { config, db, temporal } = deps;
  const app = Fastify({
    // Database errors are logged without their parameters (see serializeError).
    ...(deps.logger ? { loggerInstance: deps.logger.child({}, { serializers: { err: serializeError } }) } : { logger: false }),
    // A client's X-Request-Id is used only when short and plain (requestId reads the header itself).
    requestIdHeader: false,
    genReqId: requestId,
    // Bodies are not coerced and closed to unknown fields; query strings, params and headers
    // are coerced; no string anywhere holds control characters (api/plugins/input.ts).
    schemaController: { compilersFactory: { buildValidator: validatorFactory() } },
    schemaErrorFormatter: formatSchemaErrors,
    // What the router answers itself (a bad %-encoding, a path parameter over maxParamLength) is
    // a problem too, or the DCU envelope under /api/dcu: not Fastify's own JSON.
    frameworkErrors,
    // Behind a reverse proxy (BERTH_TRUST_PROXY): the client's address, scheme and host from its
    // X-Forwarded-* headers (the login throttle, the cookie's Secure flag, the CSRF origin check).
    trustProxy: config.trustProxy.length > 0 ? [...config.trustProxy] : false,
  }).withTypeProvider<TypeBoxTypeProvider>();
  // First: the request's span encloses every hook and the handler (api/plugins/tracing.ts).
  if (deps.tracing) await app.register(tracingPlugin(deps.tracing));

  // Starts and waits for workflows (BERTH_WAIT_TIMEOUT); the routes never see the Temporal client.
  const runs = createWorkflowRuns({ temporal, waitTimeoutMs: config.waitTimeoutMs });
  const hosts = createHostService({ db, staleAfterMs: config.hosts.staleAfterMs, runs });
  const images = createImageService({ db, runs });
  const registries = createRegistryPolicy(config.registries);
  const pulls = createPullService({
    db,
    temporal,
    runs,
    hosts,
    registries,
    maxConcurrentPerUser: config.pulls.maxConcurrentPerUser,
    pricePerMb: config.pulls.pricePerMb,
  });
  const containers = createContainerService({ db, temporal, runs, hosts, config: config.containers });
  // Authenticated credentials, kept for a moment; revocations reach every API process at once.
  const credentialCache =
    config.authCacheTtlMs > 0 ? createCredentialCache({ databaseUrl: config.database.url, ttlMs: config.authCacheTtlMs, logger: deps.logger }) : null;
  const users = createUserService({ db, containers, credentials: credentialCache });
  const authService = createAuthService({ db, tokenTtlMs: config.tokenTtlMs, throttle: config.login, cache: credentialCache });
  const auditService = createAuditService(db);
  const dcu = createDcuService({
    db,
    temporal,
    runs,
    hosts,
    registries,
    minio: config.dcu.minio ? minioClient(config.dcu.minio) : null,
    bucket: config.dcu.bucket,
    downloadUrlTtlSeconds: config.dcu.downloadUrlTtlSeconds,
    limits: { maxInFlight: config.dcu.maxInFlight, quotaMb: config.dcu.quotaMb, pricePerGb: config.dcu.pricePerGb },
  });

  if (credentialCache) app.addHook('onClose', async () => credentialCache.close());
  app.addSchema(Problem);
  for (const schema of [AuditEntry, Session, ApiKey, CreatedApiKey, AdminUser]) app.addSchema(schema);
  // Once close() began (SIGTERM), a response ends its connection: a keep-alive connection
  // would otherwise hold the server open until its idle timeout.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (closing) reply.header('connection', 'close');
  });
  // The rest of the request (validation, hooks, handler) runs as part of it: a workflow it starts
  // carries its id (core/request-context.ts). Once the body is parsed: a parser's stream events
  // would run outside the context.
  app.addHook('preValidation', (request, _reply, done) => runWithRequestId(request.id, done));
  // Per-user limits on every mutating route: this hook runs before the rate-limit plugin's.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.some((m) => MUTATING.has(m)) && !route.config?.public) {
      route.config = { ...route.config, rateLimit: { max: config.rateLimit.max, timeWindow: config.rateLimit.windowMs } };
    }
  });

  // Security headers on every response (set on the raw response in onRequest, so before any
  // other hook can fail the request, and kept by the hijacked event stream).
  await app.register(helmet, { contentSecurityPolicy: { useDefaults: false, directives: API_CSP }, frameguard: { action: 'deny' } });
  // CORS only for the origins BERTH_CORS_ORIGINS lists (exact matches); without any, no CORS
  // headers at all. Before authentication: a preflight carries no token.
  if (config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: [...config.corsOrigins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      exposedHeaders: ['x-request-id', 'location', 'retry-after', 'content-disposition'],
    });
  }
  // The web console at / (BERTH_WEB_DIR): the not-found handler serves it, so no route is shadowed.
  const pages = webConsole(config.webDir);
  await app.register(pages.plugin);
  await app.register(problems, { fallback: pages.fallback });
  await app.register(input); // its onRequest hook runs before authentication's
  await app.register(swagger, {
    openapi: {
      info: { title: 'Berth API', version: '0.1.0', description: 'Self-hosted control plane for Docker hosts' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    // Shared schemas are components named by their $id (Problem, DcuError, ...), not def-<n>.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  // The docs are public: this hook must be in place before the docs routes are added. A public
  // route needs no token, and the document says so (`security: []`).
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...route.config, public: true };
    if (route.config?.public && route.schema?.security === undefined) route.schema = { ...route.schema, security: [] };
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { persistAuthorization: false, deepLinking: true }, staticCSP: DOCS_CSP });
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler', // after authentication, so the key is the user
    keyGenerator: (request) => request.user?.id ?? request.ip,
    errorResponseBuilder: (_request, context) => {
      countLimited(LIMITS.rateLimit);
      return new AppError(429, 'rate-limited', 'Too Many Requests', `Rate limit exceeded: try again in ${context.after}.`);
    },
  });
  await app.register(websocket);
  await app.register(browserSession); // the console's session cookie, read by authentication
  await app.register(auth, { auth: authService });
  await app.register(audit, { audit: auditService });
  await app.register(metrics, { gauges: createGaugeService({ db, temporal, hosts }) });

  await app.register(healthRoutes, { readiness: createReadiness({ db, temporal }) });
  await app.register(authRoutes, { prefix: '/api/v1/auth', auth: authService });
  await app.register(accountRoutes, { prefix: '/api/v1/users/me', auth: authService, audit: auditService });
  await app.register(userRoutes, { prefix: '/api/v1/users', users });
  await app.register(adminUserRoutes, { prefix: '/api/v1/users', users, auth: authService });
  await app.register(auditRoutes, { prefix: '/api/v1/admin/audit', audit: auditService });
  await app.register(hostRoutes, { prefix: '/api/v1/hosts', hosts });
  await app.register(imageRoutes, { prefix: '/api/v1/images', images, pulls });
  await app.register(containerRoutes, { prefix: '/api/v1/containers', containers });
  await app.register(releaseRoutes, { prefix: '/api/v1/admin/releases', releases: createReleaseService({ db, temporal }) });
  await app.register(dcuRoutes, { prefix: '/api/dcu', dcu });
  const hostStreams = createHostStreamClient({ token: config.internalToken, ca: config.streamsCa });
  app.addHook('onClose', async () => hostStreams.close());
  await app.register(containerStreamRoutes, { prefix: '/api/v1/containers', containers, hosts, hostStreams, limits: config.streams, auth: authService });

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
