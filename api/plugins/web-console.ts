/**
 * The web console (web/, built by `npm run web:build` into BERTH_WEB_DIR, default web/dist),
 * served at `/` by the API itself, so it shares the API's origin: its session cookie and the
 * CSRF rules (api/plugins/browser-session.ts) need no CORS.
 *
 * - A file of the build is served as it is: `/assets/*` (names with a content hash) cached for a
 *   year, immutable; anything else (index.html, favicon) revalidated on every use (no-cache).
 * - The SPA fallback: `/`, and a GET whose Accept names text/html (a browser's navigation to
 *   /containers/<id>, say), get index.html, so that the console's own routes reload.
 * - `/api`, `/docs`, `/metrics`, `/healthz`, `/readyz` and everything under them are never the
 *   console's: an unknown path there stays the API's 404 problem (the DCU routes' envelope).
 *
 * The console is what the API's not-found handler tries first (api/plugins/problems.ts): no
 * route of the API can be shadowed by it, and a prefix with a not-found handler of its own
 * (/api/dcu) keeps it.
 * - Without a build, `/` says in plain text how to make one (503), instead of failing.
 *
 * The console's pages get a content security policy of their own: scripts, styles, images,
 * fonts and connections (fetch, EventSource, WebSocket) from this origin only, no inline script.
 * Files are read at each request: a new build is served without restarting the API.
 */
import { stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import fp from 'fastify-plugin';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/** Paths that belong to the API, never to the console. */
const API_PREFIXES = ['/api', '/docs', '/metrics', '/healthz', '/readyz'];

export const CONSOLE_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "connect-src 'self'", // fetch, EventSource and the stats WebSocket (ws:/wss: of this origin)
  "font-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "img-src 'self' data:",
  "manifest-src 'self'",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  // React sets style attributes through the DOM (not restricted); a library's <style> is allowed.
  "style-src 'self' 'unsafe-inline'",
  "worker-src 'self'",
].join('; ');

const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

export const NOT_BUILT =
  'The Berth web console is not built here.\n\n' +
  'Build it from the repository with `npm run web:build` (`npm run up` builds it when it is missing or stale),\n' +
  'or point BERTH_WEB_DIR at a built console (a folder with index.html), then reload this page.\n\n' +
  'The API is at /api/v1 and its documentation at /docs.\n';

const underApi = (path: string) => API_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));

/** Whether the client asks for a page (a browser's navigation names text/html in Accept). */
const wantsPage = (request: FastifyRequest) => /(^|[,\s])text\/html(\s*[;,]|\s*$)/i.test(request.headers.accept ?? '');

/** Answers a request the API has no route for; false when it is not the console's (then a 404). */
export type NotFoundFallback = (request: FastifyRequest, reply: FastifyReply) => Promise<boolean>;

/** The console in `root`: a plugin to register (it gives replies sendFile) and the not-found fallback. */
export function webConsole(root: string): { plugin: FastifyPluginAsync; fallback: NotFoundFallback } {
  const base = resolve(root);

  /** The build's regular file at this URL path, relative to the root; undefined when there is none. */
  async function fileAt(path: string): Promise<string | undefined> {
    const full = resolve(base, `.${path}`);
    // Nothing outside the build, and no dotfile (.env, .git) within it.
    if (!full.startsWith(base + sep) || full.slice(base.length).split(sep).some((part) => part.startsWith('.'))) return undefined;
    const info = await stat(full).catch(() => undefined);
    return info?.isFile() ? full.slice(base.length + 1) : undefined;
  }

  /** The console's policy replaces the API's on what the console serves (not on the API's 404s). */
  const consolePolicy = (reply: FastifyReply) => reply.header('content-security-policy', CONSOLE_CSP);

  function send(reply: FastifyReply, file: string) {
    consolePolicy(reply).header('cache-control', file.startsWith(`assets${sep}`) ? IMMUTABLE : REVALIDATE);
    return reply.sendFile(file, { cacheControl: false, dotfiles: 'deny' });
  }

  async function fallback(request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const path = request.url.split('?')[0]!;
    if ((request.method !== 'GET' && request.method !== 'HEAD') || underApi(path)) return false;
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return false;
    }
    const file = decoded === '/' ? undefined : await fileAt(decoded);
    if (file) {
      await send(reply, file);
      return true;
    }
    if (decoded !== '/' && !wantsPage(request)) return false;
    if (!(await fileAt('/index.html'))) {
      await consolePolicy(reply).code(503).type('text/plain; charset=utf-8').header('cache-control', REVALIDATE).send(NOT_BUILT);
      return true;
    }
    await send(reply, 'index.html');
    return true;
  }

  // reply.sendFile for the fallback (the files it sends are chosen above; a missing build: a warning at start).
  const plugin = fp(async (app) => {
    await app.register(fastifyStatic, { root: base, serve: false, wildcard: false, index: false, dotfiles: 'deny' });
  }, { name: 'web-console' });
  return { plugin, fallback };
}
