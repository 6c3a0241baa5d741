/**
 * API key scopes: what a key may reach. A session (a login's token) reaches everything its user
 * may; a key reaches only the routes its scopes name. Every route maps to one requirement here,
 * by its path: a route this table does not know needs `admin`, so a new route is closed to keys
 * until it is placed. A route that needs `admin` needs an admin for a session too: the auth hook
 * refuses anyone else before the route runs.
 */
export const SCOPES = ['images:read', 'images:write', 'containers:read', 'containers:write', 'dcu', 'ledger:read', 'audit:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * What a route needs of an API key: a scope; `any` (any valid key, e.g. who am I); or `session`
 * (account management: sessions, keys, the password, logout; never a key).
 */
export type Requirement = { scope: Scope } | { any: true } | { session: true };

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const rw = (method: string, resource: 'images' | 'containers'): Requirement => ({
  scope: `${resource}:${READ_METHODS.has(method) ? 'read' : 'write'}`,
});

/** The requirement of a route, by its method and its path pattern (Fastify's routeOptions.url). */
export function requirementOf(method: string, url: string): Requirement {
  const path = url.replace(/\/+$/, '');
  // Who am I, and a user's own record (the route shows users only themselves, admins anyone).
  if ((path === '/api/v1/users/me' || path === '/api/v1/users/:id') && READ_METHODS.has(method)) return { any: true };
  if (path === '/api/v1/auth/logout') return { session: true };
  if (/^\/api\/v1\/users\/me\/(sessions|api-keys|password)(\/|$)/.test(path)) return { session: true };
  if (path === '/api/v1/users/me/ledger') return { scope: 'ledger:read' };
  if (path === '/api/v1/users/me/audit') return { scope: 'audit:read' };
  // A stats ticket only lets its holder read the container's stats.
  if (/^\/api\/v1\/containers\/:id\/stats\/ticket$/.test(path)) return { scope: 'containers:read' };
  if (path === '/api/v1/images' || path.startsWith('/api/v1/images/')) return rw(method, 'images');
  if (path === '/api/v1/containers' || path.startsWith('/api/v1/containers/')) return rw(method, 'containers');
  if (path === '/api/dcu' || path.startsWith('/api/dcu/')) return { scope: 'dcu' };
  return { scope: 'admin' };
}

/** Whether a key with `scopes` meets `requirement`. `admin` is honoured only on an admin's key. */
export function keyAllows(scopes: readonly string[], requirement: Requirement, role: 'admin' | 'user'): boolean {
  if ('session' in requirement) return false;
  if ('any' in requirement) return true;
  if (requirement.scope === 'admin') return role === 'admin' && scopes.includes('admin');
  return scopes.includes(requirement.scope);
}
