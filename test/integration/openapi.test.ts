/**
 * The OpenAPI document (/docs/json) is one tools can trust: every operation has a unique
 * operationId and its success response, errors are problem+json (the DCU routes: their
 * envelope), public routes say `security: []`, streamed and binary responses say their content
 * type, every component is named; and a client generated from it with openapi-typescript
 * type-checks. A new route that breaks a convention of api/schemas.ts fails here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import openapiTS, { astToString } from 'openapi-typescript';
import { adminToken, bearer, buildTestApp } from '../support/app.js';

interface Media {
  schema?: { $ref?: string; type?: string };
}
interface Response {
  description: string;
  headers?: Record<string, unknown>;
  content?: Record<string, Media>;
}
interface Operation {
  operationId?: string;
  security?: unknown[];
  responses: Record<string, Response>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
}

/** The routes anyone may call: they, and only they, say `security: []`. */
const PUBLIC = ['getHealth', 'getReadiness', 'getMetrics', 'login', 'getDcuHealth'];
/** Error statuses whose body is not a problem, by design: readiness reports what is down. */
const NOT_PROBLEMS: Record<string, string> = { 'getReadiness 503': 'Readiness' };
/** Responses that have no body by nature. */
const BODILESS = new Set(['101', '204', '301', '302', '303', '304', '307', '308']);

async function documentOf(t: Parameters<typeof buildTestApp>[0]): Promise<Document> {
  const app = await buildTestApp(t);
  const res = await app.inject({ method: 'GET', url: '/docs/json' });
  assert.equal(res.statusCode, 200);
  return res.json<Document>();
}

function operations(doc: Document) {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({ path, method, operation, name: `${method.toUpperCase()} ${path}` })),
  );
}

test('every operation: a unique camelCase operationId, its success response, problem+json errors, security [] when public', async (t) => {
  const doc = await documentOf(t);
  const ops = operations(doc);
  assert.ok(ops.length >= 35, `${ops.length} operations`);
  const ids = new Map<string, string>();
  for (const { path, operation, name } of ops) {
    const id = operation.operationId;
    assert.ok(id, `${name} has an operationId`);
    assert.match(id, /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*$/, `${name}: operationId "${id}" is camelCase`);
    assert.ok(!ids.has(id), `${name}: operationId "${id}" is also ${ids.get(id)}'s`);
    ids.set(id, name);

    const statuses = Object.keys(operation.responses);
    const success = statuses.filter((s) => /^[123]\d\d$/.test(s));
    assert.ok(success.length > 0, `${name} declares its success response (has ${statuses.join(', ')})`);
    for (const status of success) {
      const response = operation.responses[status]!;
      if (BODILESS.has(status)) {
        assert.equal(response.content, undefined, `${name} ${status} has no body`);
        continue;
      }
      const media = Object.entries(response.content ?? {});
      assert.ok(media.length > 0, `${name} ${status} says its content type`);
      for (const [type, { schema }] of media) assert.ok(schema, `${name} ${status} ${type} has a schema`);
    }

    const dcu = path.startsWith('/api/dcu/');
    for (const status of statuses.filter((s) => /^[45]\d\d$/.test(s))) {
      const content = operation.responses[status]!.content ?? {};
      const other: string | undefined = NOT_PROBLEMS[`${id} ${status}`];
      const type: string = dcu || other ? 'application/json' : 'application/problem+json';
      const expected: string = other ?? (dcu ? 'DcuError' : 'Problem');
      assert.deepEqual(Object.keys(content), [type], `${name} ${status} is ${type}`);
      assert.equal(content[type]!.schema?.$ref, `#/components/schemas/${expected}`, `${name} ${status} is a ${expected}`);
    }

    if (PUBLIC.includes(id)) assert.deepEqual(operation.security, [], `${name} is public: security []`);
    else assert.equal(operation.security, undefined, `${name} needs the bearer token (the document's default)`);
  }
  for (const id of PUBLIC) assert.ok(ids.has(id), `${id} is documented`);

  // No GET has a side effect: a ping starts a workflow, so it is a POST.
  assert.equal(doc.paths['/api/v1/hosts/{id}/ping']?.get, undefined);
  assert.equal(doc.paths['/api/v1/hosts/{id}/ping']?.post?.operationId, 'pingHost');
});

test('components are named; streams, files, redirects and the WebSocket say what they send', async (t) => {
  const doc = await documentOf(t);
  const names = Object.keys(doc.components.schemas);
  assert.deepEqual(names.filter((n) => /^def-\d+$/.test(n)), [], 'no anonymous component');
  for (const name of [
    'Problem', 'DcuError', 'User', 'Image', 'Container', 'LedgerEntry', 'DcuTask', 'Readiness', 'StatsSample', 'StatsError',
    'LoginResult', 'Host', 'HostPing', 'Pull', 'ContainerQuote', 'ReleaseOverview', 'ReleaseRunDetail', 'AdminUser',
  ]) {
    assert.ok(names.includes(name), `component ${name}`);
  }
  const op = (path: string, method = 'get') => doc.paths[path]![method]!;
  const contentTypes = (path: string, status: string, method = 'get') => Object.keys(op(path, method).responses[status]!.content ?? {});
  assert.deepEqual(contentTypes('/api/v1/images/pulls/{pullId}/events', '200'), ['text/event-stream']);
  assert.deepEqual(contentTypes('/api/v1/containers/{id}/logs', '200'), ['text/plain']);
  assert.deepEqual(contentTypes('/api/v1/containers/{id}/logs/download', '200'), ['text/plain']);
  assert.ok(op('/api/v1/containers/{id}/logs/download').responses['200']!.headers?.['content-disposition']);
  assert.deepEqual(contentTypes('/metrics', '200'), ['text/plain']);
  const stats = op('/api/v1/containers/{id}/stats');
  assert.equal(stats.operationId, 'streamContainerStats');
  assert.match(stats.responses['101']!.description, /Switching Protocols/);
  assert.match(JSON.stringify(stats), /StatsSample.*close|close.*StatsSample/i, 'the messages and close codes are described');
  assert.ok(stats.responses['426'], 'a request without the upgrade is a 426');
  assert.ok(op('/api/dcu/download/{task_id}').responses['302']!.headers?.location);
});

test('real responses match the document: problems are problem+json with the Problem fields, the DCU its envelope', async (t) => {
  const app = await buildTestApp(t);
  const token = await adminToken(app);
  const missing = '00000000-0000-4000-8000-000000000000';
  const problems = [
    await app.inject({ method: 'GET', url: `/api/v1/containers/${missing}`, headers: bearer(token) }), // 404 from a handler
    await app.inject({ method: 'GET', url: '/api/v1/containers/not-a-uuid', headers: bearer(token) }), // 400 from validation
    await app.inject({ method: 'GET', url: '/api/v1/users/me' }), // 401 from the auth hook
    await app.inject({ method: 'GET', url: `/api/v1/containers/${missing}/stats`, headers: bearer(token) }), // 426: no upgrade
  ];
  assert.deepEqual(
    problems.map((r) => r.statusCode),
    [404, 400, 401, 426],
  );
  for (const res of problems) {
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/, res.body);
    const body = res.json<Record<string, unknown>>();
    assert.deepEqual(Object.keys(body).sort(), ['detail', 'instance', 'requestId', 'status', 'title', 'type'], res.body);
    assert.equal(body.status, res.statusCode);
  }
  assert.equal(problems[3]!.headers.upgrade, 'websocket');

  const dcu = await app.inject({ method: 'GET', url: `/api/dcu/status/${missing}`, headers: bearer(token) });
  assert.equal(dcu.statusCode, 404);
  assert.match(String(dcu.headers['content-type']), /^application\/json/);
  assert.deepEqual(dcu.json(), { code: 404, status: 404, message: dcu.json().message, data: null });
});

test('a client generated by openapi-typescript type-checks against the document', async (t) => {
  const doc = await documentOf(t);
  const dir = await mkdtemp(join(tmpdir(), 'berth-openapi-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const docPath = join(dir, 'openapi.json');
  await writeFile(docPath, JSON.stringify(doc));
  await writeFile(join(dir, 'berth.d.ts'), astToString(await openapiTS(pathToFileURL(docPath))));
  await writeFile(join(dir, 'client.ts'), CLIENT);
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const args = ['--noEmit', '--strict', '--target', 'es2022', '--lib', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', join(dir, 'client.ts')];
  const run = await promisify(execFile)(process.execPath, [tsc, ...args], { cwd: dir }).catch((error: { stdout?: string; stderr?: string }) => error);
  assert.ok(!('code' in run) || !run.code, `tsc found errors in the generated client:\n${run.stdout ?? ''}${run.stderr ?? ''}`);
});

/** Uses a few operations the way a client would; a wrong type is a compile error. */
const CLIENT = `
import type { components, operations, paths } from './berth';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Json<R> = R extends { content: { 'application/json': infer B } } ? B : never;
type Problem = components['schemas']['Problem'];

// Login: public, a token (absent for the console, whose cookie carries it) and the user.
const login: operations['login']['requestBody']['content']['application/json'] = { username: 'admin', password: 'secret' };
type Login = Json<operations['login']['responses'][200]>;
const token: string | undefined = ({} as Login).token;
const loginIsNamed: Equal<Login, components['schemas']['LoginResult']> = true;
const role: 'admin' | 'user' = ({} as Login).user.role;

// Images: the pull body is closed; a pull answers 201 with the Image or 202 with the pull id.
const pull: paths['/api/v1/images/pull']['post']['requestBody']['content']['application/json'] = { image: 'busybox', host: 'host-a' };
// @ts-expect-error a field the route does not know
const privileged: operations['pullImage']['requestBody']['content']['application/json'] = { image: 'busybox', privileged: true };
const imageIsNamed: Equal<Json<operations['pullImage']['responses'][201]>, components['schemas']['Image']> = true;
const pullId: string = ({} as Json<operations['pullImage']['responses'][202]>).pullId;
const events: string = {} as operations['streamPullEvents']['responses'][200]['content']['text/event-stream'];

// Containers: path parameters, the named Container, problems as application/problem+json.
const params: operations['getContainer']['parameters']['path'] = { id: '00000000-0000-4000-8000-000000000000' };
const port: number = ({} as Json<operations['getContainer']['responses'][200]>).hostPort;
const notFound: Equal<operations['getContainer']['responses'][404]['content']['application/problem+json'], Problem> = true;
const operation: operations['operateContainer']['parameters']['path']['operation'] = 'restart';
const logs: string = {} as operations['getContainerLogs']['responses'][200]['content']['text/plain'];
const sample: components['schemas']['StatsSample'] = {} as components['schemas']['StatsSample'];
const cpu: number = sample.cpuPercent;

// Hosts: a ping is a POST; each host counts its containers. A running container's next charge.
const pinged: string = ({} as Json<paths['/api/v1/hosts/{id}/ping']['post']['responses'][200]>).engineId;
const hostContainers: number = ({} as components['schemas']['Host']).containers;
const nextCharge: string | null = ({} as components['schemas']['Container']).nextChargeAt;
const nextRuns: string[] = (({} as components['schemas']['ReleaseOverview']).schedule ?? { nextRuns: [] }).nextRuns;
const noGet: Equal<paths['/api/v1/hosts/{id}/ping']['get'], undefined> = true;

// DCU: its envelope, also for errors (data null).
const task: string = ({} as Json<operations['getDcuTask']['responses'][200]>).data.task_id;
const dcuError: null = ({} as Json<operations['getDcuTask']['responses'][404]>).data;

export { login, token, loginIsNamed, hostContainers, nextCharge, nextRuns, role, pull, privileged, imageIsNamed, pullId, events, params, port, notFound, operation, logs, cpu, pinged, noGet, task, dcuError };
`;
