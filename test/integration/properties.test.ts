/**
 * Property-based tests over every operation of the OpenAPI document (GET /docs/json): the
 * operations are read from the document, so a new route cannot skip them, and the test fails
 * when one of them was not called with every generated input. For each operation, fast-check
 * generates hostile requests — path parameters, query strings, declared headers and JSON bodies
 * with wrong types, control characters and NUL, huge and negative numbers (±1e308, 1e400,
 * 2^53+1), very long strings (2 MB, rarely), unicode (emoji, RTL, combining marks, lone
 * surrogates), path traversal and bad percent-encoding, unknown and prototype-polluting fields
 * mixed with the operation's own field names, invalid JSON, other content types — and every
 * answer must be:
 *
 * - a 2xx or a 4xx, never a 5xx, and within ANSWER_WITHIN_MS;
 * - when a 4xx, a problem (application/problem+json with type, title, status, detail, its status
 *   the response's), or under /api/dcu the DCU envelope (application/json, a non-zero code, a
 *   message, data null);
 * - when a 4xx, without a trace: the fuzz user's rows in images, containers, dcu_tasks,
 *   ledger_entries, api_keys, pull_slots, tokens and stream_tickets are counted after every
 *   request (and once more at the end), and a refused POST /api/v1/users leaves no user of the
 *   name it gave. Pulls, containers and DCU tasks record their row (a pull slot, a container, a
 *   task) before their workflow starts, so unchanged counts also mean that no workflow started;
 * - when a 2xx to a mutating operation, one of ACCEPTS (a legitimate accept, said why), to a body
 *   its schema accepts; reads (GET) may answer 2xx to anything.
 *
 * Every request carries at least one hostile part. Path parameters are generated (random ids,
 * traversal, junk), so they name nothing real and nothing of anyone's is acted on; the two
 * operations that act when called and take nothing (logout, triggerRelease: a release removes
 * everything on the stack) always get a body they refuse, and refusedWhereItMustBe checks every
 * request before it is sent, dot segments resolved. User routes run as a plain user (balance 0),
 * admin routes (core/scopes.ts) as the admin, public ones as the user. Streams: logs always get
 * follow=false; pull events and the stats WebSocket only ever see ids that name nothing (and
 * without an upgrade the WebSocket route answers 426), so nothing streams without end.
 *
 * Findings are collected, not stopped at: each operation's subtest lists them by kind, with the
 * first request of each. BERTH_FUZZ_SEED replays a run (its seed is printed), BERTH_FUZZ_RUNS
 * sets the inputs per operation (default 25).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { validatorFactory } from '../../api/plugins/input.js';
import { requirementOf } from '../../core/scopes.js';
import { apiKeys, containers, dcuTasks, images, ledgerEntries, pullSlots, streamTickets, tokens, users } from '../../db/schema.js';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, testDb } from '../support/app.js';

const RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 25);
const SEED = Number(process.env.BERTH_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** A request that has not been answered by then is a finding (an endless stream, a hang). */
const ANSWER_WITHIN_MS = 15_000;

/**
 * Mutating operations that may answer 2xx to generated input, and why that is right; and only
 * when the body they were given is valid by the document's schema (checked with the server's own
 * validator, api/plugins/input.ts): a 2xx to an invalid body is always a finding, and so is any
 * 2xx of a mutating operation not listed here. Users the fuzz creates are disabled at the end.
 */
const ACCEPTS: Record<string, string> = {
  quoteContainer: 'a quote is a computation: every field is optional and nothing is written',
  createUser: 'a well-formed username and password make a user; the hostile part was the query string, which is open by design',
  createApiKey: "a name and scopes make one of the fuzz user's own keys: a name of quotes, markup or unicode is only a name",
};

// ---------------------------------------------------------------------------------------
// The document

interface Schema {
  type?: string | string[];
  format?: string;
  pattern?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  propertyNames?: Schema;
  required?: string[];
  items?: Schema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  operationId?: string;
  security?: unknown[];
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  responses: Record<string, unknown>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}
interface Op {
  method: string;
  path: string;
  name: string;
  id: string;
  operation: Operation;
  admin: boolean;
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

function operationsOf(doc: Document): Op[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.has(method))
      .map(([method, operation]) => {
        const upper = method.toUpperCase();
        const requirement = requirementOf(upper, path.replace(/\{([^}]+)\}/g, ':$1'));
        // Public routes (`security: []`) need nothing; requirementOf places only authenticated ones.
        const isPublic = Array.isArray(operation.security) && operation.security.length === 0;
        return {
          method: upper,
          path,
          name: `${upper} ${path}`,
          id: operation.operationId ?? `${upper} ${path}`,
          operation,
          admin: !isPublic && 'scope' in requirement && requirement.scope === 'admin',
        };
      }),
  );
}

// ---------------------------------------------------------------------------------------
// JSON values, including what JSON.stringify cannot write (1e400, own "__proto__" fields)

class Raw {
  constructor(readonly text: string) {}
}
class Obj {
  constructor(readonly entries: Array<[string, Value]>) {}
}
type Value = null | boolean | number | string | Raw | Obj | Value[];

function toJson(value: Value): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Obj) return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  return JSON.stringify(value);
}
const textOf = (value: Value) => (typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : toJson(value));

/** encodeURIComponent, which throws on a lone surrogate: that one goes as its (invalid UTF-8) CESU-8 bytes. */
function encode(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    let out = '';
    for (const ch of text) {
      const code = ch.charCodeAt(0);
      out +=
        ch.length === 1 && code >= 0xd800 && code <= 0xdfff
          ? [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('')
          : encodeURIComponent(ch);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------
// Hostile values

const CONTROL = ['\u0000', '\u0001', '\u0007', '\b', '\t', '\n', '\r', '\u000b', '\u001b', '\u007f', '\u0080', '\u0085', '\u009b', '\u009f'];
const UNICODE = [
  '😀',
  '👨‍👩‍👧‍👦👨‍👩‍👧‍👦',
  '🏳️‍🌈',
  '\u202Egnp.exe',
  'مرحبا بالعالم',
  'שָׁלוֹם',
  'e\u0301\u0302\u0303\u0304\u0305',
  'Z\u0335\u0321\u0322\u031b\u034e\u0353a\u0337l\u0338g\u0336o\u0334',
  '\uFEFFbom',
  '\u200B\u200C\u200D',
  '\u2028\u2029',
  '\uFFFD\uFFFE\uFFFF',
  '\uD800',
  'lone\uDFFF',
  '𝕌𝕟𝕚𝕔𝕠𝕕𝕖',
  'İıſK',
  'ﬃ',
  '\u00A0\u3000',
  '日本語のテキスト',
];
const INJECTION = [
  '../',
  '../../../../etc/passwd',
  '..\\..\\..\\windows\\win.ini',
  '%2e%2e%2f',
  '..%2f..%2f',
  '%252e%252e%252f',
  '/',
  '//',
  '.',
  '..',
  '%00',
  '~root',
  "' OR '1'='1",
  "'; DROP TABLE users; --",
  '"',
  '\\',
  '<script>alert(1)</script>',
  '${jndi:ldap://127.0.0.1/x}',
  '{{7*7}}',
  '%s%s%s%n',
  '$(id)',
  '`id`',
  '\\u0000',
  'null',
  'undefined',
  'true',
  '[object Object]',
  '__proto__',
  'NaN',
  'Infinity',
  '-1',
  '0',
  '1e308',
  '-1e308',
  '9007199254740993',
  '0x1F',
  ' 1',
  '',
  ' ',
];
/** Long strings: mostly thousands of characters, sometimes hundreds of thousands, rarely 2 MB. */
const longString = fc
  .tuple(
    fc.constantFrom('a', 'A', 'é', '😀', '../', '%', '\u0000', 'x y', '\u202E'),
    fc.oneof(
      { weight: 12, arbitrary: fc.integer({ min: 65, max: 5000 }) },
      { weight: 3, arbitrary: fc.integer({ min: 60_000, max: 300_000 }) },
      { weight: 1, arbitrary: fc.constant(2 * 1024 * 1024 + 1) },
    ),
  )
  .map(([unit, length]) => unit.repeat(Math.ceil(length / unit.length)).slice(0, length));

const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.constantFrom(...CONTROL, 'a', 'Z', '/', ' ', '.'), { minLength: 1, maxLength: 12 }).map((a) => a.join('')) },
  { weight: 3, arbitrary: fc.constantFrom(...UNICODE) },
  { weight: 3, arbitrary: fc.constantFrom(...INJECTION) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...UNICODE), fc.constantFrom(...CONTROL, ...INJECTION)).map(([a, b]) => a + b) },
  { weight: 1, arbitrary: longString },
);

const NUMBERS = [1e308, -1e308, -1, 0, -0, 1, 2 ** 53 + 1, -(2 ** 53 + 1), 2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 63, 1.5, -0.5, 0.1, 5e-324, 1e-7, 1e21, 65535, 65536];
/** Number literals JSON.parse reads as something else: Infinity, a rounded integer, 0. */
const RAW_NUMBERS = ['1e400', '-1e400', '9007199254740993', '-9007199254740993', '123456789012345678901234567890', '1e-400', '-0', '1.0', '1E2', '0.30000000000000004'];
const hostileNumber: fc.Arbitrary<Value> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NUMBERS) },
  { weight: 2, arbitrary: fc.constantFrom(...RAW_NUMBERS).map((n) => new Raw(n)) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
);
const EXTRA_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', ' ', '\u0000', 'a\nb', 'zz_unknown', '$where', '$gt', 'id', 'userId', 'role', 'isAdmin', 'balance', 'privileged', 'HostConfig', 'x'.repeat(300)];
const hostileKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...EXTRA_KEYS) },
  { weight: 1, arbitrary: fc.constantFrom(...UNICODE, ...CONTROL) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
);
const hostileScalar: fc.Arbitrary<Value> = fc.oneof(
  { weight: 6, arbitrary: hostileString },
  { weight: 4, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
);
const hostileValue: fc.Arbitrary<Value> = fc.oneof(
  { weight: 8, arbitrary: hostileScalar },
  { weight: 1, arbitrary: fc.array(hostileScalar, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.array(fc.tuple(hostileKey, hostileScalar), { maxLength: 4 }).map((e) => new Obj(e)) },
  { weight: 1, arbitrary: fc.constantFrom<Value>([], new Obj([]), [[]], [null], new Obj([['a', new Obj([['b', [1, 'x']]])]])) },
);

// ---------------------------------------------------------------------------------------
// Values a schema accepts (so that validation reaches the other fields, and handlers run)

function literalsOf(schema: Schema): unknown[] | null {
  if (schema.enum) return schema.enum;
  if ('const' in schema) return [schema.const];
  if (schema.anyOf) {
    const all = schema.anyOf.map(literalsOf);
    return all.every((l) => l !== null) ? all.flat() : null;
  }
  return null;
}
const typeOf = (schema: Schema) => (Array.isArray(schema.type) ? schema.type[0] : schema.type);

function plausibleString(schema: Schema): fc.Arbitrary<string> {
  if (schema.format === 'uuid') return fc.uuid();
  if (schema.format === 'date-time') return fc.date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString());
  const max = Math.min(schema.maxLength ?? 40, 40);
  if (schema.pattern) {
    try {
      return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length <= (schema.maxLength ?? Infinity));
    } catch {
      // A pattern fast-check cannot generate from: printable text instead.
    }
  }
  return fc.string({ unit: 'grapheme-ascii', minLength: Math.max(1, schema.minLength ?? 1), maxLength: Math.max(max, schema.minLength ?? 1) });
}

function plausible(schema: Schema): fc.Arbitrary<Value> {
  const literals = literalsOf(schema);
  if (literals) return fc.constantFrom(...(literals as Value[]));
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map(plausible));
  switch (typeOf(schema)) {
    case 'string':
      return plausibleString(schema);
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -1000, max: Math.min(schema.maximum ?? 1_000_000, Number.MAX_SAFE_INTEGER) });
    case 'number':
      return fc.double({ min: schema.exclusiveMinimum ?? schema.minimum ?? -1000, max: schema.maximum ?? 1000, noNaN: true, minExcluded: schema.exclusiveMinimum !== undefined });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return fc.array(plausible(schema.items ?? {}), { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 3, 3) });
    case 'object': {
      // A map (container env): a few entries with valid names; else the object's own fields.
      const values = schema.additionalProperties;
      if (typeof values === 'object' && !schema.properties) {
        const entry = fc.tuple(plausibleString(schema.propertyNames ?? {}), plausible(values));
        return fc.array(entry, { maxLength: 3 }).map((entries) => new Obj(entries));
      }
      return objectOf(schema, false).map((p) => p.value);
    }
    default:
      return hostileScalar;
  }
}

/** A value hostile to the schema: its own type gone wrong (huge, negative, control characters) or another type. */
function hostileFor(schema: Schema): fc.Arbitrary<Value> {
  const type = typeOf(schema);
  if (type === 'string') return fc.oneof(hostileString, hostileValue);
  if (type === 'integer' || type === 'number') return fc.oneof(hostileNumber, hostileValue);
  if (type === 'array') {
    return fc.oneof(
      fc.array(hostileFor(schema.items ?? {}), { maxLength: 5 }),
      hostileValue,
      fc.integer({ min: 101, max: 20_000 }).map((n) => Array.from({ length: n }, () => 'a') as Value[]),
    );
  }
  if (type === 'object') {
    return fc.oneof(
      fc.array(fc.tuple(fc.oneof(hostileKey, plausibleString({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,8}$' })), hostileValue), { maxLength: 6 }).map((e) => new Obj(e)),
      fc.integer({ min: 101, max: 5000 }).map((n) => new Obj(Array.from({ length: n }, (_, i) => [`K${i}`, 'v']))),
      hostileValue,
    );
  }
  return hostileValue;
}

// ---------------------------------------------------------------------------------------
// Requests: each part says whether it is hostile; every request has a hostile part

interface Part<T> {
  value: T;
  hostile: boolean;
}
const hostile = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<Part<T>> => a.map((value) => ({ value, hostile: true }));
const plain = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<Part<T>> => a.map((value) => ({ value, hostile: false }));

function field(schema: Schema): fc.Arbitrary<Part<Value>> {
  return fc.oneof({ weight: 3, arbitrary: hostile(hostileFor(schema)) }, { weight: 2, arbitrary: plain(plausible(schema)) });
}

/** An object with the schema's field names (each maybe missing), hostile or plausible values, sometimes unknown fields. */
function objectOf(schema: Schema, withExtras = true): fc.Arbitrary<Part<Obj>> {
  const fields = Object.entries(schema.properties ?? {}).map(([name, s]) =>
    fc.option(field(s).map((p) => ({ name, ...p })), { nil: undefined, freq: 4 }),
  );
  const extras = withExtras
    ? fc.oneof({ weight: 4, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.tuple(hostileKey, hostileValue), { minLength: 1, maxLength: 3 }) })
    : fc.constant([]);
  return fc.tuple(fc.tuple(...fields), extras).map(([given, extra]) => {
    const present = given.filter((f) => f !== undefined);
    return {
      value: new Obj([...present.map((f): [string, Value] => [f.name, f.value]), ...extra]),
      hostile: present.some((f) => f.hostile) || extra.length > 0,
    };
  });
}

type Body = { kind: 'none' } | { kind: 'json'; value: Value } | { kind: 'text'; text: string; contentType: string };

const INVALID_JSON = [
  '{',
  '{"a":',
  '[1,]',
  '{"a":1}{"b":2}',
  "{'a':1}",
  '{"a":1,}',
  'nul',
  '\u0000',
  '{"a":"\u0000"}',
  '{"a":"\\ud800"}',
  '{"__proto__":{"isAdmin":true}}',
  '{"constructor":{"prototype":{"isAdmin":true}}}',
  '\uFEFF{}',
  '{"a":NaN}',
  '{"a":Infinity}',
  '"unterminated',
  '{"a" 1}',
  ' ',
];
const OTHER_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/octet-stream', 'application/json; charset=utf-16', 'application/problem+json', 'text/html\u0000', '*/*', 'application/json, text/plain'];

const invalidJson: fc.Arbitrary<Body> = fc.constantFrom(...INVALID_JSON).map((text) => ({ kind: 'text', text, contentType: 'application/json' }));
const otherContentType: fc.Arbitrary<Body> = fc
  .tuple(fc.constantFrom(...OTHER_TYPES), fc.oneof(hostileString, fc.constantFrom('a=1&b=2', '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--', '<a>1</a>', '{"a":1}')))
  .map(([contentType, text]) => ({ kind: 'text', text: text || 'x', contentType }));
/** Nested arrays, thousands deep (rare: the parsers and validators recurse). */
const deep: fc.Arbitrary<Body> = fc.integer({ min: 1000, max: 100_000 }).map((n) => ({ kind: 'text', text: `${'['.repeat(n)}${']'.repeat(n)}`, contentType: 'application/json' }));

/**
 * The body. `mustRefuse`: the operation takes neither a body nor path parameters and acts when
 * called (logout, a release of everything on the stack): its body is always a JSON object with
 * fields, which a route without a body schema refuses (api/plugins/input.ts). Not invalid JSON
 * nor another content type: "\uFEFF{}" is {} to Fastify, and a release would run.
 */
function bodyOf(op: Op, mustRefuse: boolean): fc.Arbitrary<Part<Body>> {
  const schema = op.operation.requestBody?.content?.['application/json']?.schema;
  const json = (a: fc.Arbitrary<Part<Value>>) => a.map((p): Part<Body> => ({ value: { kind: 'json', value: p.value }, hostile: p.hostile }));
  const refused = [
    { weight: 6, arbitrary: hostile(invalidJson) },
    { weight: 3, arbitrary: hostile(otherContentType) },
    { weight: 1, arbitrary: hostile(deep) },
  ];
  if (schema && (schema.properties || typeOf(schema) === 'object')) {
    return fc.oneof(
      { weight: 24, arbitrary: json(objectOf(schema)) },
      { weight: 6, arbitrary: json(hostile(hostileValue.filter((v) => !(v instanceof Obj)))) },
      { weight: 3, arbitrary: plain(fc.constant<Body>({ kind: 'none' })) },
      ...refused,
    );
  }
  const nonEmpty = hostileValue.filter((v) => v !== null && v !== '' && !(v instanceof Obj && v.entries.length === 0));
  const withFields = fc.array(fc.tuple(hostileKey, hostileValue), { minLength: 1, maxLength: 4 }).map((e) => new Obj(e));
  if (mustRefuse) {
    // A plain field name first: "__proto__" and "constructor" alone would rest on Fastify's defaults.
    const fields = fc.tuple(fc.constantFrom('zz_unknown', 'force', 'now', 'all'), hostileValue, fc.array(fc.tuple(hostileKey, hostileValue), { maxLength: 3 }));
    return json(hostile(fields.map(([key, value, more]) => new Obj([[key, value], ...more]))));
  }
  return fc.oneof(
    { weight: 12, arbitrary: plain(fc.constant<Body>({ kind: 'none' })) },
    { weight: 3, arbitrary: plain(fc.constant<Body>({ kind: 'json', value: new Obj([]) })) },
    { weight: 9, arbitrary: json(hostile(fc.oneof(nonEmpty, withFields))) },
    ...refused,
  );
}

/** Raw pieces of URL: dot segments (the URL parser resolves them), encoded slashes, bad percent-encoding, delimiters. */
const WIRE = [
  '..',
  '.',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '%2e',
  '%2f',
  '%2F',
  '..%2F..%2F',
  '%252e%252e%252f',
  '%00',
  '%',
  '%zz',
  '%ff',
  '%ED%A0%80',
  '%c0%ae%c0%ae',
  '%C0%AF',
  ';',
  ';jsessionid=1',
  '%3B',
  '%3F',
  '%23',
  '?x=1',
  '#fragment',
  'a/b',
  '//',
  '',
  '*',
  '~',
  'me',
  '%20',
  '+',
  '\\',
  '%5C',
  '&',
  '=',
  '@',
  ':',
];
const traversal = fc
  .tuple(fc.constantFrom('../', '..%2f', '%2e%2e/', '%2e%2e%2f', '..%5c', '..\\', '....//'), fc.integer({ min: 1, max: 6 }), fc.constantFrom('etc/passwd', 'x', 'proc/self/environ', ''))
  .map(([step, n, tail]) => step.repeat(n) + tail);

/** A part of a URL is at most about 2 MB once encoded (a 2 MB string of U+202E is 18 MB encoded). */
const MAX_URL_PART = 2 * 1024 * 1024;
const clipUrl = (part: Part<string>): Part<string> => (part.value.length > MAX_URL_PART ? { ...part, value: part.value.slice(0, MAX_URL_PART) } : part);

function pathValue(schema: Schema): fc.Arbitrary<Part<string>> {
  return fc.oneof(
    { weight: 3, arbitrary: plain(plausible(schema).map((v) => encode(textOf(v)))) },
    { weight: 4, arbitrary: hostile(hostileString.map(encode)) },
    { weight: 2, arbitrary: hostile(fc.constantFrom(...WIRE)) },
    { weight: 1, arbitrary: hostile(traversal) },
    { weight: 1, arbitrary: hostile(fc.integer({ min: 101, max: 5000 }).map((n) => 'a'.repeat(n))) },
  ).map(clipUrl);
}

function queryValue(schema: Schema): fc.Arbitrary<Part<string>> {
  return fc.oneof(
    { weight: 3, arbitrary: plain(plausible(schema).map((v) => encode(textOf(v)))) },
    { weight: 4, arbitrary: hostile(hostileString.map(encode)) },
    { weight: 1, arbitrary: hostile(hostileValue.map((v) => encode(textOf(v)))) },
    { weight: 1, arbitrary: hostile(fc.constantFrom(...WIRE)) },
  ).map(clipUrl);
}

/** A declared query parameter: missing, once, repeated (an array), or under a bracketed or cased name. */
function queryPairs(param: Parameter): fc.Arbitrary<Part<string[]> | undefined> {
  const schema = param.schema ?? {};
  const key = fc.oneof(
    { weight: 8, arbitrary: plain(fc.constant(param.name)) },
    { weight: 1, arbitrary: hostile(fc.constantFrom(`${param.name}[]`, `${param.name}[0]`, `${param.name}[a][b]`, param.name.toUpperCase(), `${param.name}%00`, `${param.name}.x`)) },
  );
  const pairs = fc.tuple(key, fc.array(queryValue(schema), { minLength: 1, maxLength: 3 })).map(([k, values]) => ({
    value: values.map((v) => `${k.value}=${v.value}`),
    hostile: k.hostile || values.length > 1 || values.some((v) => v.hostile),
  }));
  return fc.option(pairs, { nil: undefined, freq: 3 });
}
const extraQuery: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(hostileKey, hostileString).map(([k, v]) => `${encode(k)}=${encode(v)}`.slice(0, MAX_URL_PART)),
  fc.constantFrom('&&&', '==', '=x', 'a', 'a[b]=1', 'a[]=1&a[]=2', '__proto__[isAdmin]=true', 'constructor[prototype][x]=1', '%00=%00', '%=%', 'a=%zz', 'a=%ff', 'a=1;b=2', 'ticket=x'),
);

interface FuzzRequest {
  url: string;
  headers: Record<string, string>;
  body: Body;
  hostile: boolean;
}

function requestOf(op: Op): fc.Arbitrary<FuzzRequest> {
  const params = op.operation.parameters ?? [];
  const pathParams = params.filter((p) => p.in === 'path');
  const queryParams = params.filter((p) => p.in === 'query');
  const headerParams = params.filter((p) => p.in === 'header');
  // Logs streamed with follow=true do not end: always follow=false (the ids are random, but still).
  const follows = queryParams.some((p) => p.name === 'follow');

  const path = fc.tuple(...pathParams.map((p) => pathValue(p.schema ?? {}).map((v) => ({ name: p.name, ...v }))));
  const query = fc.tuple(fc.tuple(...queryParams.map(queryPairs)), fc.array(extraQuery, { maxLength: 3 }));
  const headers = fc.tuple(...headerParams.map((p) => fc.option(field(p.schema ?? {}).map((v) => ({ name: p.name.toLowerCase(), ...v })), { nil: undefined })));

  return fc
    .tuple(path, query, headers, bodyOf(op, mustRefuse(op)))
    .map(([pathValues, [declared, extra], headerValues, body]): FuzzRequest => {
      let url = op.path;
      for (const p of pathValues) url = url.replace(`{${p.name}}`, p.value);
      let pairs = [...declared.flatMap((d) => d?.value ?? []), ...extra];
      if (follows) pairs = [...pairs.filter((pair) => !/^follow/i.test(pair)), 'follow=false'];
      const headerEntries = headerValues.filter((h) => h !== undefined).map((h): [string, string] => [h.name, textOf(h.value).replace(/[\r\n]/g, ' ')]);
      return {
        url: pairs.length > 0 ? `${url}?${pairs.join('&')}` : url,
        headers: Object.fromEntries(headerEntries),
        body: body.value,
        hostile:
          body.hostile ||
          extra.length > 0 ||
          pathValues.some((p) => p.hostile) ||
          declared.some((d) => d?.hostile) ||
          headerValues.some((h) => h?.hostile),
      };
    })
    .filter((r) => r.hostile);
}

/** Operations that act when called and take nothing to refuse but a body (logout, triggerRelease). */
const mustRefuse = (op: Op) => op.method !== 'GET' && op.method !== 'HEAD' && !op.path.includes('{') && !op.operation.requestBody;

/**
 * The last guard before a request is sent: one that reaches an operation that acts when called
 * (directly, or through dot segments) has a body that operation refuses, a JSON object with fields.
 */
function refusedWhereItMustBe(ops: Op[], method: string, url: string, body: Body): boolean {
  const path = pathnameOf(url).replace(/\/+$/, '');
  const lands = ops.some((op) => mustRefuse(op) && op.method === method && op.path.replace(/\/+$/, '') === path);
  return !lands || (body.kind === 'json' && body.value instanceof Obj && body.value.entries.some(([k]) => /^[a-z_]+$/.test(k) && k !== 'constructor'));
}

// ---------------------------------------------------------------------------------------
// Checks

/**
 * The fuzzer's requests come from a loopback address of its own (app.inject's remoteAddress: a
 * label, no traffic): its failed logins count against that address, not 127.0.0.1, which the
 * stack's own API and every other test share (login throttling counts per address in PostgreSQL).
 */
const FUZZ_ADDRESS = `127.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;

/** Where a request lands once the URL parser has resolved its dot segments (as app.inject does). */
const pathnameOf = (url: string) => new URL(url, 'http://localhost').pathname;
const isDcu = (url: string) => /^\/api\/dcu(\/|$)/.test(pathnameOf(url));

const clip = (text: string, max = 240) => (text.length > max ? `${JSON.stringify(text.slice(0, max))}… (${text.length} chars)` : JSON.stringify(text));

function describe(op: Op, req: FuzzRequest, token: 'admin' | 'user'): string {
  const body =
    req.body.kind === 'none' ? 'no body' : req.body.kind === 'json' ? `json ${clip(toJson(req.body.value))}` : `${JSON.stringify(req.body.contentType)} ${clip(req.body.text)}`;
  const headers = Object.keys(req.headers).length > 0 ? ` headers ${clip(JSON.stringify(req.headers))}` : '';
  return `${op.method} ${clip(req.url, 300)} as ${token}${headers}, ${body}`;
}

/** What is wrong with a 4xx's body (a kind, to group by, and the detail), or null. */
function errorShape(res: LightMyRequestResponse, dcu: boolean): { kind: string; detail: string } | null {
  const type = String(res.headers['content-type'] ?? '');
  const wrong = (kind: string) => ({ kind: `${res.statusCode} ${kind}`, detail: clip(res.body, 200) });
  let body: Record<string, unknown>;
  try {
    body = res.json<Record<string, unknown>>();
  } catch {
    return wrong(`not JSON (content-type ${type})`);
  }
  if (typeof body !== 'object' || body === null) return wrong('not a JSON object');
  // Fastify's own errors say which in `code` (FST_ERR_...): part of the kind.
  const fastify = typeof body.code === 'string' ? ` (${body.code})` : '';
  if (dcu) {
    if (!/^application\/json/.test(type)) return wrong(`content-type ${type}, not application/json (the DCU envelope)${fastify}`);
    if (typeof body.code !== 'number' || body.code === 0) return wrong(`code is not a non-zero number: not the DCU envelope${fastify}`);
    if (typeof body.message !== 'string') return wrong('no message in the DCU envelope');
    if (body.status !== res.statusCode || body.data !== null) return wrong("the envelope's status or data is wrong");
    return null;
  }
  if (!/^application\/problem\+json/.test(type)) return wrong(`content-type ${type}, not application/problem+json${fastify}`);
  for (const key of ['type', 'title', 'detail'] as const) {
    if (typeof body[key] !== 'string') return wrong(`a problem without ${key}`);
  }
  if (body.status !== res.statusCode) return wrong(`a problem whose status is ${JSON.stringify(body.status)}`);
  return null;
}

const db = () => testDb().db;
const COUNTED = { images, containers, dcu_tasks: dcuTasks, ledger_entries: ledgerEntries, api_keys: apiKeys, pull_slots: pullSlots, tokens, stream_tickets: streamTickets };
type Counts = Record<keyof typeof COUNTED, number>;

async function countRows(userId: string): Promise<Counts> {
  const columns = Object.entries(COUNTED).map(([name, table]) => sql`(select count(*)::int from ${table} where ${table.userId} = ${userId}) as ${sql.identifier(name)}`);
  const result = await db().execute(sql`select ${sql.join(columns, sql`, `)}`);
  return result.rows[0] as Counts;
}
const diff = (before: Counts, after: Counts) =>
  Object.keys(COUNTED)
    .map((k) => [k, after[k as keyof Counts] - before[k as keyof Counts]] as const)
    .filter(([, d]) => d !== 0);

type Validate = ((data: unknown) => boolean) & { errors?: unknown };
const compileBody = (validatorFactory() as unknown as (external: object, options: object) => (route: object) => Validate)({}, {});

/** Whether a generated body is valid by the operation's request body schema, as the server validates bodies. */
function validBody(body: Body, validate: Validate | null): boolean {
  if (!validate) return body.kind === 'none' || (body.kind === 'json' && body.value instanceof Obj && body.value.entries.length === 0);
  let value: unknown;
  try {
    if (body.kind === 'json') value = JSON.parse(toJson(body.value));
    else if (body.kind === 'text' && /^application\/json\s*(;|$)/.test(body.contentType)) value = JSON.parse(body.text.replace(/^\uFEFF/, ''));
    else return false;
  } catch {
    return false;
  }
  return validate(value);
}

async function userExists(username: string): Promise<boolean> {
  if (username.includes('\u0000')) return false; // PostgreSQL text holds no NUL: no user has one
  const [row] = (await db().execute(sql`select count(*)::int as n from ${users} where ${users.username} = ${username}`)).rows as Array<{ n: number }>;
  return row?.n !== 0;
}

/** The username of a generated POST /api/v1/users body, when it has a string one. */
function usernameOf(body: Body): string | null {
  if (body.kind !== 'json' || !(body.value instanceof Obj)) return null;
  const entry = [...body.value.entries].reverse().find(([k]) => k === 'username');
  return typeof entry?.[1] === 'string' ? entry[1] : null;
}

async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------

test('every operation of the OpenAPI document, with hostile input: a 2xx or a problem 4xx, never a 5xx, nothing written by a refusal', async (t) => {
  const started = Date.now();
  // No registry is allowed here: a reference the generator makes valid by chance ("a", "1e308")
  // is refused before any name lookup, pull slot or workflow (the network is 127.0.0.1 only).
  // No rate limit: hundreds of requests a minute from one user would be 429s, not validation.
  const app = await buildTestApp(t, {
    registries: { ...baseConfig.registries, allowed: [], internal: [], adminOnly: [] },
    rateLimit: { max: 1_000_000, windowMs: 60_000 },
  });
  const res = await app.inject({ method: 'GET', url: '/docs/json' });
  assert.equal(res.statusCode, 200);
  const ops = operationsOf(res.json<Document>());
  assert.ok(ops.length >= 35, `${ops.length} operations in the document`);

  const admin = await adminToken(app);
  const user = await createUser(app); // balance 0: nothing that costs can start
  // Counted after the logins above: the session logins made here are not the fuzz's.
  const baseline = await countRows(user.id);
  let last = baseline;
  const accepted: Array<{ op: string; request: string; status: number; rows: string; valid: boolean }> = [];
  const created: string[] = [];
  const acceptedRows = new Map<string, number>();
  const covered = new Map<string, number>();
  let total = 0;
  let huge = 0;

  for (const [index, op] of ops.entries()) {
    await t.test(op.name, async () => {
      const requests = fc.sample(requestOf(op), { numRuns: RUNS, seed: SEED + index });
      const bodySchema = op.operation.requestBody?.content?.['application/json']?.schema;
      const validate = bodySchema ? compileBody({ schema: bodySchema, method: op.method, url: op.path, httpPart: 'body' }) : null;
      const token = op.admin ? admin : user.token;
      const as = op.admin ? 'admin' : 'user';
      // Findings by kind: how many, and the first request of each.
      const findings = new Map<string, { count: number; example: string }>();
      const found = (kind: string, example: string) => {
        const entry = findings.get(kind);
        if (entry) entry.count++;
        else findings.set(kind, { count: 1, example });
      };
      const seen = new Map<number, number>();
      const opStarted = Date.now();
      let slowest = { ms: 0, what: '' };
      for (const req of requests) {
        const headers: Record<string, string> = { ...req.headers, ...bearer(token) };
        if (req.body.kind === 'json') headers['content-type'] = 'application/json';
        if (req.body.kind === 'text') headers['content-type'] = req.body.contentType;
        const payload = req.body.kind === 'json' ? toJson(req.body.value) : req.body.kind === 'text' ? req.body.text : undefined;
        const what = describe(op, req, as);
        if (!refusedWhereItMustBe(ops, op.method, req.url, req.body)) {
          found('not sent: it could have run an operation that acts when called', what);
          continue;
        }
        // A refused POST /api/v1/users leaves no user of that name (one may exist from an earlier run).
        const username = op.id === 'createUser' ? usernameOf(req.body) : null;
        const existed = username !== null && (await userExists(username));
        let answer: LightMyRequestResponse | 'timeout';
        const sent = Date.now();
        try {
          answer = await within(
            app.inject({ method: op.method as 'GET', url: req.url, headers, remoteAddress: FUZZ_ADDRESS, ...(payload === undefined ? {} : { payload }) }),
            ANSWER_WITHIN_MS,
          );
        } catch (error) {
          found(`the request could not be made: ${String(error)}`, what);
          continue;
        }
        if (Date.now() - sent > slowest.ms) slowest = { ms: Date.now() - sent, what };
        if (req.url.length + (payload?.length ?? 0) + Object.values(req.headers).join('').length >= 1024 * 1024) huge++;
        total++;
        covered.set(op.name, (covered.get(op.name) ?? 0) + 1);
        if (answer === 'timeout') {
          found(`no answer within ${ANSWER_WITHIN_MS} ms`, what);
          continue;
        }
        const status = answer.statusCode;
        seen.set(status, (seen.get(status) ?? 0) + 1);
        const now = await countRows(user.id);
        const changed = diff(last, now);
        last = now;
        const rows = changed.map(([k, d]) => `${k} ${d > 0 ? '+' : ''}${d}`).join(', ');

        if (status >= 500) found(`${status}, a server error`, `${what} → ${clip(answer.body, 200)}`);
        else if (!((status >= 200 && status < 300) || (status >= 400 && status < 500))) found(`${status}, neither 2xx nor 4xx`, what);
        if (status >= 400 && status < 500) {
          const wrong = errorShape(answer, isDcu(req.url));
          if (wrong) found(wrong.kind, `${what} → ${wrong.detail}`);
          if (changed.length > 0) found(`${status}, yet rows changed`, `${what} → ${rows}`);
          if (username !== null && !existed && (await userExists(username))) found(`${status}, yet the user it names exists`, `${what} → ${clip(username)}`);
        }
        if (status >= 200 && status < 300) {
          if (op.method !== 'GET') {
            const valid = validBody(req.body, validate);
            accepted.push({ op: op.id, request: what, status, rows: rows || 'no row of the fuzz user', valid });
            if (!ACCEPTS[op.id]) found(`${status} to a mutating operation`, `${what} → rows: ${rows || 'none'}`);
            else if (!valid) found(`${status} to a body its schema refuses`, `${what} → ${clip(answer.body, 200)}`);
            if (op.id === 'createUser') created.push(answer.json<{ id: string }>().id);
          }
          for (const [k, d] of changed) acceptedRows.set(k, (acceptedRows.get(k) ?? 0) + d);
        }
      }
      const histogram = [...seen.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ');
      t.diagnostic(`${op.name} (${op.id}, as ${as}): ${requests.length} inputs in ${Date.now() - opStarted} ms: ${histogram}`);
      if (slowest.ms > 1000) t.diagnostic(`  slowest: ${slowest.ms} ms for ${slowest.what}`);
      assert.equal(requests.length, RUNS, `${op.name}: ${requests.length} inputs generated`);
      const report = [...findings.entries()].map(([kind, { count, example }]) => `${kind} (×${count}), e.g. ${example}`);
      assert.deepEqual(report, [], `${op.name}: ${report.length} kind(s) of finding`);
    });
  }

  // Whatever a refusal might have started in the background has had its chance to write.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = await countRows(user.id);
  const unexplained = diff(baseline, after)
    .map(([k, d]) => [k, d - (acceptedRows.get(k) ?? 0)] as const)
    .filter(([, d]) => d !== 0);
  // Users a generated request made (a legitimate accept) sign in no more.
  for (const id of created) {
    const disabled = await app.inject({ method: 'PATCH', url: `/api/v1/users/${id}`, headers: bearer(admin), payload: { disabled: true } });
    assert.equal(disabled.statusCode, 200, disabled.body);
  }
  // The fuzz user's session still works: no generated request logged it out or disabled it.
  const me = await app.inject({ method: 'GET', url: '/api/v1/users/me', headers: bearer(user.token) });

  const missing = ops.filter((op) => (covered.get(op.name) ?? 0) < RUNS).map((op) => op.name);
  t.diagnostic(`seed ${SEED} (BERTH_FUZZ_SEED=${SEED} replays it), ${RUNS} runs per operation`);
  t.diagnostic(`${covered.size} of ${ops.length} operations covered, ${total} generated inputs answered (${huge} of them over 1 MB), in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const a of accepted) {
    const judged = !ACCEPTS[a.op] ? 'NOT an expected accept' : a.valid ? ACCEPTS[a.op] : 'NOT valid by its schema';
    t.diagnostic(`accepted: ${a.op} ${a.status} (${a.rows}; ${judged}): ${a.request}`);
  }
  assert.deepEqual(missing, [], 'every operation of the document was called with every generated input');
  assert.equal(covered.size, ops.length);
  assert.deepEqual(unexplained, [], `rows of the fuzz user changed beyond what accepted requests wrote (${JSON.stringify(baseline)} → ${JSON.stringify(after)})`);
  assert.equal(me.statusCode, 200, `the fuzz user's session still works: ${me.body}`);
});
