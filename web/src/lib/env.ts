/** A container's environment as people type it: one NAME=value per line. Pure (unit-tested in test/unit/web-console.test.ts). */

/** "NAME=value" lines as an env object, or the first line that is not one. */
export function parseEnv(text: string): { env: Record<string, string> } | { invalid: string } {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const at = line.indexOf('=');
    const name = at > 0 ? line.slice(0, at).trim() : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return { invalid: line };
    env[name] = line.slice(at + 1);
  }
  return { env };
}
