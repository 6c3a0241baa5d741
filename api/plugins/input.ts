/**
 * Input that cannot hurt. One place decides how every request part is validated, so a
 * new route is covered without doing anything:
 *
 * - **Bodies are taken as sent**: no type coercion (`"amount": "10"` is a 400) and no
 *   silently dropped fields: every object in a body schema that does not say otherwise is
 *   closed (`additionalProperties: false`) and an unknown field is a 400 that names it.
 *   A route without a body schema takes no body (an empty object is accepted).
 * - **Query strings, path parameters and headers** arrive as text: they are coerced to
 *   their schema's types, as before.
 * - **No control characters** (C0, DEL, C1) in any string of any part, nor in property
 *   names, unless the string's schema says `'x-control-chars': 'multiline'` (then tab, LF
 *   and CR are allowed; NUL never is). PostgreSQL refuses NUL in text, Docker and C strings
 *   end at it, and control characters in names and logs mislead whoever reads them.
 *   Query strings and path parameters are checked before authentication on every route,
 *   with or without a schema.
 * - **Numbers are finite, integers exact**: `?page=1e400` coerces to Infinity, which Ajv's
 *   `minimum` and `maximum` let through, and `?page=1e20` makes an OFFSET PostgreSQL refuses:
 *   both were a 500. Every number of every part must be finite, every integer within ±(2^53 − 1).
 * - **Request ids**: a client's `X-Request-Id` is kept only when short and plain.
 *
 * Schemas reached through an external `$ref` (addSchema) are compiled as written: keep
 * request schemas inline (TypeBox does) so that the rules above apply to them.
 *
 * Errors are Fastify validation errors (statusCode 400, `validation`, `validationContext`),
 * so each plugin's error handler answers them in its own shape (problem+json, or the DCU
 * envelope).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import AjvCompiler from '@fastify/ajv-compiler';
import type { FastifySchemaValidationError, FastifyServerOptions } from 'fastify';
import type { SchemaErrorDataVar } from 'fastify/types/schema.js';
import fp from 'fastify-plugin';

/** The schema keyword naming which control characters a string may hold. */
export const CONTROL_CHARS = 'x-control-chars';
type ControlMode = 'none' | 'multiline';

/** The schema keyword (added to every number and integer schema) that refuses ±Infinity and inexact integers. */
export const FINITE = 'x-finite';

/** Spread into a string schema that may hold tab, LF and CR (never NUL): `Type.String({ ...multiline })`. */
export const multiline = { [CONTROL_CHARS]: 'multiline' } as const;

// C0 controls, DEL and C1 controls; the multiline variant leaves out \t, \n and \r.
// Matching control characters is these patterns' purpose.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_WHITESPACE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

export function hasControlChars(value: string, mode: ControlMode = 'none'): boolean {
  return (mode === 'multiline' ? CONTROL_BUT_WHITESPACE : CONTROL).test(value);
}

const CONTROL_MESSAGE: Record<ControlMode, string> = {
  none: 'must not contain control characters',
  multiline: 'must not contain NUL or control characters other than tab, LF and CR',
};

// ---------------------------------------------------------------------------------------
// Schemas: what each part's validator is compiled from

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

const SINGLE = ['additionalProperties', 'items', 'additionalItems', 'contains', 'not', 'if', 'then', 'else', 'unevaluatedProperties', 'unevaluatedItems'];
const LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'];
const MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];

function typesOf(schema: Json): unknown[] {
  return Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
}

/** Names of the properties an allOf (TypeBox's Intersect) declares, or null when it is not a plain intersection of objects. */
function intersectionProperties(schema: Json): string[] | null {
  const names: string[] = [];
  for (const member of schema.allOf as unknown[]) {
    if (!isObject(member)) return null;
    if (Array.isArray(member.allOf)) {
      const nested = intersectionProperties(member);
      if (!nested) return null;
      names.push(...nested);
      continue;
    }
    if (member.patternProperties !== undefined || (member.additionalProperties !== undefined && member.additionalProperties !== false)) return null;
    if (member.anyOf !== undefined || member.oneOf !== undefined || !isObject(member.properties)) return null;
    names.push(...Object.keys(member.properties));
  }
  return names;
}

/**
 * A copy of a request-part schema with the control-character keyword on every string and
 * property name, and (for bodies) every object closed. The route's own schema (and so the
 * OpenAPI document) is left as written.
 */
export function prepareSchema(schema: unknown, { closeObjects }: { closeObjects: boolean }, inAllOf = false): unknown {
  if (Array.isArray(schema)) return schema.map((s) => prepareSchema(s, { closeObjects }, inAllOf));
  if (!isObject(schema)) return schema; // true/false
  const out: Json = { ...schema };
  for (const key of SINGLE) if (isObject(out[key])) out[key] = prepareSchema(out[key], { closeObjects });
  for (const key of LISTS) {
    if (Array.isArray(out[key])) out[key] = (out[key] as unknown[]).map((s) => prepareSchema(s, { closeObjects }, key === 'allOf'));
  }
  for (const key of MAPS) {
    if (isObject(out[key])) {
      out[key] = Object.fromEntries(Object.entries(out[key]).map(([k, s]) => [k, prepareSchema(s, { closeObjects })]));
    }
  }

  const types = typesOf(out);
  if (types.includes('string') && out[CONTROL_CHARS] === undefined) out[CONTROL_CHARS] = 'none';
  if (types.includes('integer')) out[FINITE] = 'integer';
  else if (types.includes('number')) out[FINITE] = 'number';

  const objectLike = types.includes('object') || out.properties !== undefined || out.patternProperties !== undefined;
  if (types.includes('object')) {
    if (out.propertyNames === undefined) out.propertyNames = { [CONTROL_CHARS]: 'none' };
    else if (isObject(out.propertyNames) && out.propertyNames[CONTROL_CHARS] === undefined) {
      out.propertyNames = { ...out.propertyNames, [CONTROL_CHARS]: 'none' };
    }
  }
  // A member of an intersection stays open: the intersection itself is closed below.
  if (closeObjects && !inAllOf && out.additionalProperties === undefined) {
    if (Array.isArray(out.allOf)) {
      const names = intersectionProperties(out);
      if (names) {
        if (out.type === undefined) out.type = 'object';
        out.propertyNames ??= { [CONTROL_CHARS]: 'none' };
        out.properties = { ...Object.fromEntries(names.map((n) => [n, true])), ...(isObject(out.properties) ? out.properties : {}) };
        out.additionalProperties = false;
      }
    } else if (objectLike) {
      if (out.type === undefined) out.type = 'object';
      out.additionalProperties = false;
    }
  }
  return out;
}

/** Header names are case-insensitive: Fastify lower-cases a header schema's names only for its own compiler. */
function lowerCaseHeaderNames(schema: unknown): unknown {
  if (!isObject(schema)) return schema;
  const out: Json = { ...schema };
  if (isObject(out.properties)) out.properties = Object.fromEntries(Object.entries(out.properties).map(([k, s]) => [k.toLowerCase(), s]));
  if (Array.isArray(out.required)) out.required = (out.required as unknown[]).map((k) => (typeof k === 'string' ? k.toLowerCase() : k));
  return out;
}

// ---------------------------------------------------------------------------------------
// Validators

interface AjvLike {
  addKeyword(definition: {
    keyword: string;
    type?: string;
    schemaType: string;
    errors: boolean;
    validate: ((schema: never, data: never) => boolean) & { errors?: unknown[] };
  }): unknown;
}

function controlCharsKeyword(ajv: AjvLike) {
  const validate: ((mode: ControlMode, data: string) => boolean) & { errors?: unknown[] } = (mode, data) => {
    if (!hasControlChars(data, mode)) return true;
    validate.errors = [{ keyword: CONTROL_CHARS, message: CONTROL_MESSAGE[mode] ?? CONTROL_MESSAGE.none, params: { [CONTROL_CHARS]: mode } }];
    return false;
  };
  ajv.addKeyword({ keyword: CONTROL_CHARS, type: 'string', schemaType: 'string', errors: true, validate });
  return ajv;
}

const FINITE_MESSAGE = {
  integer: `must be an integer between ${-Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`,
  number: 'must be a finite number',
};

/**
 * Ajv's limits skip non-finite numbers (its `minimum` is guarded by isFinite) and its coercion of
 * text makes "1e400" Infinity, so this keyword checks every number, whatever its type: it has no
 * `type` of its own, which Ajv would guard with isFinite too.
 */
function finiteKeyword(ajv: AjvLike) {
  const validate: ((kind: keyof typeof FINITE_MESSAGE, data: unknown) => boolean) & { errors?: unknown[] } = (kind, data) => {
    if (typeof data !== 'number') return true;
    if (kind === 'integer' ? Number.isSafeInteger(data) : Number.isFinite(data)) return true;
    validate.errors = [{ keyword: FINITE, message: FINITE_MESSAGE[kind] ?? FINITE_MESSAGE.number, params: { [FINITE]: kind } }];
    return false;
  };
  ajv.addKeyword({ keyword: FINITE, schemaType: 'string', errors: true, validate });
  return ajv;
}

const SHARED_OPTIONS = { useDefaults: true, allErrors: false } as const;
/** Bodies: no coercion, nothing removed (an unknown field is an error, not a silent drop). */
const BODY_OPTIONS = { ...SHARED_OPTIONS, coerceTypes: false, removeAdditional: false } as const;
/** Query strings, path parameters, headers: text coerced to the schema's types. */
const TEXT_OPTIONS = { ...SHARED_OPTIONS, coerceTypes: 'array', removeAdditional: true } as const;

interface RouteSchemaDef {
  schema: unknown;
  method: string;
  url: string;
  httpPart?: string;
}
type CompileFromPool = (route: RouteSchemaDef) => unknown;

/**
 * Fastify's `schemaController.compilersFactory.buildValidator`: Fastify's own Ajv compiler
 * (formats, shared schemas added with addSchema), in two configurations chosen per part.
 */
export function validatorFactory(): NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator'] {
  const pool = AjvCompiler();
  const build = ((externalSchemas: Record<string, unknown>) => {
    const plugins = [controlCharsKeyword as never, finiteKeyword as never];
    const body = pool(externalSchemas as never, { customOptions: BODY_OPTIONS, plugins }) as unknown as CompileFromPool;
    const text = pool(externalSchemas as never, { customOptions: TEXT_OPTIONS, plugins }) as unknown as CompileFromPool;
    return (route: RouteSchemaDef) => {
      if (route.httpPart === 'body') return body({ ...route, schema: prepareSchema(route.schema, { closeObjects: true }) });
      const schema = route.httpPart === 'headers' ? lowerCaseHeaderNames(route.schema) : route.schema;
      return text({ ...route, schema: prepareSchema(schema, { closeObjects: false }) });
    };
  }) as unknown;
  return build as NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator'];
}

// ---------------------------------------------------------------------------------------
// Errors

const quote = (name: unknown) => {
  const text = JSON.stringify(String(name));
  return text.length > 80 ? `${text.slice(0, 76)}..."` : text;
};

function describe(error: FastifySchemaValidationError): string {
  const params = error.params ?? {};
  switch (error.keyword) {
    case 'additionalProperties':
      return `has an unknown field ${quote(params.additionalProperty)}`;
    case 'propertyNames':
      return `has an invalid field name ${quote(params.propertyName)}`;
    default:
      return error.message ?? 'is invalid';
  }
}

/**
 * Fastify's `schemaErrorFormatter`: like Fastify's own, but an unknown field or an invalid
 * property name is named (Ajv keeps those in `params`), and only the first error is told.
 */
export function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: SchemaErrorDataVar): Error {
  // For an invalid property name Ajv reports the inner failure first, then `propertyNames`.
  const names = errors.find((e) => e.keyword === 'propertyNames');
  const inner = names
    ? errors.find((e) => e !== names && (e as { propertyName?: unknown }).propertyName === names.params?.propertyName)
    : undefined;
  const first = names ?? errors[0];
  if (!first) return new Error(`${dataVar} is invalid`);
  const detail = names && inner ? `${describe(names)}: the name ${inner.message ?? 'is invalid'}` : describe(first);
  return new Error(`${dataVar}${first.instancePath ?? ''} ${detail}`);
}

/** A 400 in the shape of Fastify's validation errors. */
export function validationError(part: SchemaErrorDataVar, instancePath: string, message: string, keyword = CONTROL_CHARS) {
  const validation: FastifySchemaValidationError[] = [{ keyword, instancePath, schemaPath: '', params: {}, message }];
  return Object.assign(new Error(`${part}${instancePath} ${message}`), {
    statusCode: 400,
    code: 'FST_ERR_VALIDATION',
    validation,
    validationContext: part,
  });
}

// ---------------------------------------------------------------------------------------
// Request ids

const PLAIN_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Fastify's `genReqId` (with `requestIdHeader: false`): the client's id when short and plain, else a new one. */
export function requestId(request: IncomingMessage): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && PLAIN_REQUEST_ID.test(given) ? given : randomUUID();
}

// ---------------------------------------------------------------------------------------
// Hooks for what no schema covers

const pointer = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

/** The path of the first string or property name holding a control character, or null. */
export function findControlChars(value: unknown, path = '', depth = 0): string | null {
  if (typeof value === 'string') return hasControlChars(value) ? path : null;
  if (depth > 32 || typeof value !== 'object' || value === null) return null;
  for (const [key, item] of Object.entries(value)) {
    const at = `${path}/${pointer(key)}`;
    if (hasControlChars(key)) return `${path}/${pointer(JSON.stringify(key).slice(1, -1))}`;
    const found = findControlChars(item, at, depth + 1);
    if (found !== null) return found;
  }
  return null;
}

export default fp(
  async (app) => {
    // Before authentication and whatever the route's schemas say: `?host=%00` and
    // `/releases/a%00` never reach a handler or the database.
    app.addHook('onRequest', async (request) => {
      const params = findControlChars(request.params);
      if (params !== null) throw validationError('params', params, CONTROL_MESSAGE.none);
      const query = findControlChars(request.query);
      if (query !== null) throw validationError('querystring', query, CONTROL_MESSAGE.none);
    });
    // A route without a body schema takes no body: nothing it would ignore is accepted.
    app.addHook('preValidation', async (request) => {
      if (request.routeOptions.schema?.body !== undefined) return;
      const body: unknown = request.body;
      if (body === undefined || body === null || body === '') return;
      if (isObject(body)) {
        const [field] = Object.keys(body);
        if (field === undefined) return;
        throw validationError('body', '', `has an unknown field ${quote(field)}`, 'additionalProperties');
      }
      throw validationError('body', '', 'must be empty: this route takes no body', 'type');
    });
  },
  { name: 'input' },
);
