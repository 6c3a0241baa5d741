/** Money as people type it. Pure (unit-tested in test/unit/web-console.test.ts). */

/** Amounts typed by people ("12.5", "12.50") as integer minor units, or null when not one. */
export function parseMoney(text: string): number | null {
  const match = /^\s*(\d{1,10})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  if (!match) return null;
  const [, whole = '0', fraction = ''] = match;
  return Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
}

/** A key for one credit, so that a retried request credits once (crypto.randomUUID needs a secure context). */
export function idempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
