/** Matching the console's URL patterns. Pure (unit-tested in test/unit/web-console.test.ts). */

/** Parameters of a pattern such as /containers/:id, or null when the path does not match. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split('/');
  const got = (path.length > 1 ? path.replace(/\/+$/, '') : path).split('/');
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (const [i, part] of want.entries()) {
    const actual = got[i] ?? '';
    if (part.startsWith(':')) {
      if (!actual) return null;
      try {
        params[part.slice(1)] = decodeURIComponent(actual);
      } catch {
        return null; // A malformed %-escape: no page has this address.
      }
    } else if (part !== actual) return null;
  }
  return params;
}
