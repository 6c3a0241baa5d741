/**
 * Input that cannot hurt (issue 11, item 8): control characters, wrong types and unknown
 * fields are a 400 on every route — problem+json, or the envelope on /api/dcu — and leave
 * nothing in the database; env names are POSIX names; X-Request-Id is kept only when short
 * and plain; a database error is logged without the values it was given.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { and, eq, like, sql } from 'drizzle-orm';
import pino from 'pino';
import { Type } from 'typebox';
import type { LightMyRequestResponse } from 'fastify';
import { buildApp, type App } from '../../api/app.js';
import { validatorFactory } from '../../api/plugins/input.js';
import { connectTemporal } from '../../core/temporal.js';
import { connectDatabase, serializeError, withoutQueryParams } from '../../db/client.js';
import { containers, images, ledgerEntries, pullSlots, users } from '../../db/schema.js';
import { adminToken, baseConfig, bearer, buildTestApp, createUser, testDb, uniqueName } from '../support/app.js';

const db = () => testDb().db;

function assertProblem(res: LightMyRequestResponse, pattern?: RegExp) {
  assert.equal(res.statusCode, 400, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/, res.body);
  const body = res.json<{ type: string; status: number; detail: string }>();
  assert.equal(body.status, 400);
  assert.equal(body.type, '/problems/validation', res.body);
  if (pattern) assert.match(body.detail, pattern);
  return body;
}

function assertEnvelope(res: LightMyRequestResponse, pattern?: RegExp) {
  assert.equal(res.statusCode, 400, res.body);
  assert.match(String(res.headers['content-type']), /^application\/json/, res.body);
  const body = res.json<{ code: number; status: number; message: string; data: unknown }>();
  assert.deepEqual({ code: body.code, status: body.status, data: body.data }, { code: 400, status: 400, data: null });
  if (pattern) assert.match(body.message, pattern);
  return body;
}

const countLedger = async (userId: string) => (await db().select().from(ledgerEntries).where(eq(ledgerEntries.userId, userId))).length;
const countContainers = async (userId: string) => (await db().select().from(containers).where(eq(containers.userId, userId))).length;
const countImages = async (userId: string) => (await db().select().from(images).where(eq(images.userId, userId))).length;
const countPulls = async (userId: string) => (await db().select().from(pullSlots).where(eq(pullSlots.userId, userId))).length;

test('NUL in login, user creation and credit is a 400 and writes nothing', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const user = await createUser(app);
  const login = (payload: object) => app.inject({ method: 'POST', url: '/api/v1/auth/login', payload });

  assertProblem(await login({ username: 'a\u0000b', password: 'whatever' }), /username must not contain control characters/);
  assertProblem(await login({ username: user.username, password: `${user.password}\u0000` }), /password/);
  assertProblem(await login({ username: `${user.username}\u001b[31m`, password: user.password }), /username/);

  const prefix = uniqueName('nul');
  for (const payload of [
    { username: `${prefix}\u0000x`, password: 'long enough' },
    { username: `${prefix}-pw`, password: 'long enough\u0000' },
    { username: `${prefix}-tab`, password: 'long\tenough' },
  ]) {
    assertProblem(await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(admin), payload }));
  }
  assert.equal((await db().select().from(users).where(like(users.username, `${prefix}%`))).length, 0, 'no user was created');

  const before = await countLedger(user.id);
  const credit = (payload: object, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: { ...bearer(admin), ...headers }, payload });
  assertProblem(await credit({ amount: 10, reason: 'top-up\u0000' }), /reason must not contain control characters/);
  assertProblem(await credit({ amount: 10, reason: 'line one\nline two' }), /reason/);
  assertProblem(await credit({ amount: 10, reason: 'c1 \u0085 control' }), /reason/);
  assertProblem(await credit({ amount: 10, reason: 'ok' }, { 'idempotency-key': 'key\twith tab' }), /idempotency-key/);
  assert.equal(await countLedger(user.id), before, 'no ledger entry');
  const [row] = await db().select({ balance: users.balance }).from(users).where(eq(users.id, user.id));
  assert.equal(row?.balance, 0);
});

test('NUL in a pull or a container is a 400 and writes nothing', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app, { balance: 1000 });
  const pull = (payload: object) => app.inject({ method: 'POST', url: '/api/v1/images/pull', headers: bearer(user.token), payload });
  assertProblem(await pull({ image: 'busybox', host: 'host-a\u0000' }), /host must/);
  assertProblem(await pull({ image: 'busy\u0000box' }), /image/);
  assert.equal(await countPulls(user.id), 0);
  assert.equal(await countImages(user.id), 0);

  const create = (payload: object) => app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload });
  const imageId = randomUUID();
  assertProblem(await create({ imageId, env: { A: 'x\u0000y' } }), /env\/A must not contain NUL/);
  assertProblem(await create({ imageId, env: { A: 'bell\u0007' } }), /env\/A/);
  assertProblem(await create({ imageId, cmd: ['sh', '-c', 'echo\u0000'] }), /cmd\/2/);
  assertProblem(await create({ imageId, name: 'web\u0000' }), /name/);
  // Env names are POSIX names.
  assertProblem(await create({ imageId, env: { 'A\nB': 'x' } }), /env has an invalid field name "A\\nB"/);
  assertProblem(await create({ imageId, env: { 'A=B': 'x' } }), /env has an invalid field name "A=B": the name must match pattern/);
  assertProblem(await create({ imageId, env: { '1A': 'x' } }), /env has an invalid field name "1A"/);
  assertProblem(await create({ imageId, env: { '': 'x' } }), /env/);
  assert.equal(await countContainers(user.id), 0, 'no container row');

  // Values and arguments may span lines: past validation, this is the unknown image's 404.
  const multiline = await create({ imageId, env: { CERT: '-----BEGIN-----\nabc\r\n\tdef' }, cmd: ['sh', '-c', 'echo a\necho b'] });
  assert.equal(multiline.statusCode, 404, multiline.body);
  assert.match(multiline.json().detail, /Image/);
});

test('NUL in query strings and path parameters is a 400 on every route, before anything runs', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const user = await createUser(app);
  const get = (url: string, token = user.token) => app.inject({ method: 'GET', url, headers: bearer(token) });

  assertProblem(await get('/api/v1/containers?host=%00'), /Invalid querystring: host must not contain control characters/);
  assertProblem(await get('/api/v1/containers?host=a%0Ab'), /host/);
  assertProblem(await get('/api/v1/containers?state=running%00'), /state/);
  assertProblem(await get('/api/v1/images?userId=%00', admin), /userId/);
  assertProblem(await get('/api/v1/users/me/ledger?page=1%00'), /page/);
  assertProblem(await get('/api/v1/users/me?anything=%00'), /anything/);
  assertProblem(await get('/api/v1/admin/releases/a%00', admin), /Invalid params: id must not contain control characters/);
  assertProblem(await get(`/api/v1/containers/${randomUUID()}%00`), /id/);
  assertProblem(await app.inject({ method: 'POST', url: '/api/v1/hosts/host-a%00/ping', headers: bearer(admin) }), /id/);
  assertProblem(await get('/api/v1/images/pulls/pull-%00'), /pullId/);
  // Before authentication too: no token needed to be refused, and no token lookup happens.
  assertProblem(await app.inject({ method: 'GET', url: '/api/v1/containers?host=%00' }), /host/);

  // Coercion of query strings and defaults still work.
  const page = await get('/api/v1/containers?page=1&pageSize=5');
  assert.equal(page.statusCode, 200, page.body);
  assertProblem(await get('/api/v1/containers?pageSize=abc'), /pageSize/);
});

test('body fields of the wrong type are a 400: no coercion of bodies', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const user = await createUser(app);
  const before = await countLedger(user.id);
  const credit = (payload: object) =>
    app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: bearer(admin), payload });
  assertProblem(await credit({ amount: '10', reason: 'string amount' }), /amount must be integer/);
  assertProblem(await credit({ amount: [10], reason: 'array amount' }), /amount must be integer/);
  assertProblem(await credit({ amount: 10, reason: ['array reason'] }), /reason must be string/);
  assertProblem(await credit({ amount: 10, reason: 42 }), /reason must be string/);
  assertProblem(await credit({ amount: true, reason: 'boolean amount' }), /amount/);
  assert.equal(await countLedger(user.id), before);

  const prefix = uniqueName('typ');
  assertProblem(
    await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(admin), payload: { username: prefix, password: 'long enough', balance: '5' } }),
    /balance must be integer/,
  );
  assert.equal((await db().select().from(users).where(eq(users.username, prefix))).length, 0);
  assertProblem(await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 123, password: 'x' } }), /username must be string/);
  const create = (payload: object) => app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload });
  assertProblem(await create({ imageId: randomUUID(), memoryMb: '64' }), /memoryMb must be integer/);
  assertProblem(await create({ imageId: randomUUID(), cpus: '1' }), /cpus must be number/);
  assertProblem(await create({ imageId: randomUUID(), cmd: 'sleep 1' }), /cmd must be array/);
  assertProblem(await create({ imageId: randomUUID(), env: { A: 1 } }), /env\/A must be string/);
  assert.equal(await countContainers(user.id), 0);
  assertProblem(
    await app.inject({ method: 'POST', url: '/api/v1/images/pull', headers: bearer(user.token), payload: { image: ['busybox'] } }),
    /image must be string/,
  );
  // A body that is not an object at all.
  assertProblem(await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: [{ username: 'a', password: 'b' }] }), /must be object/);
});

test('unknown body fields are a 400 naming the field, on every route', async (t) => {
  const app = await buildTestApp(t);
  const admin = await adminToken(app);
  const user = await createUser(app);
  const create = (payload: object) => app.inject({ method: 'POST', url: '/api/v1/containers', headers: bearer(user.token), payload });
  const imageId = randomUUID();
  assertProblem(await create({ imageId, privileged: true }), /unknown field "privileged"/);
  assertProblem(await create({ imageId, binds: ['/:/host'] }), /unknown field "binds"/);
  assertProblem(await create({ imageId, network_mode: 'host' }), /unknown field "network_mode"/);
  assertProblem(await create({ imageId, HostConfig: { Privileged: true } }), /unknown field "HostConfig"/);
  assert.equal(await countContainers(user.id), 0);

  const before = await countLedger(user.id);
  assertProblem(
    await app.inject({ method: 'POST', url: `/api/v1/users/${user.id}/credit`, headers: bearer(admin), payload: { amount: 5, reason: 'x', kind: 'refund' } }),
    /unknown field "kind"/,
  );
  assert.equal(await countLedger(user.id), before);
  const prefix = uniqueName('unk');
  assertProblem(
    await app.inject({ method: 'POST', url: '/api/v1/users', headers: bearer(admin), payload: { username: prefix, password: 'long enough', isAdmin: true } }),
    /unknown field "isAdmin"/,
  );
  assert.equal((await db().select().from(users).where(eq(users.username, prefix))).length, 0);
  assertProblem(
    await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: user.username, password: user.password, remember: true } }),
    /unknown field "remember"/,
  );
  assertProblem(
    await app.inject({ method: 'POST', url: '/api/v1/images/pull', headers: bearer(user.token), payload: { image: 'busybox', platform: 'linux/arm64' } }),
    /unknown field "platform"/,
  );
  // A route that takes no body refuses one rather than ignoring it (an empty object is fine).
  const stop = (payload?: object) =>
    app.inject({ method: 'POST', url: `/api/v1/containers/${randomUUID()}/stop`, headers: bearer(user.token), ...(payload ? { payload } : {}) });
  assertProblem(await stop({ force: true }), /unknown field "force"/);
  assert.equal((await stop({})).statusCode, 404);
  assert.equal((await stop()).statusCode, 404);

  // Every mutating route of the API, as an admin (admin routes refuse anyone else before
  // validation): an unknown field never gets past validation.
  type Operation = { requestBody?: { content?: Record<string, { schema?: { required?: string[] } }> } };
  const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, Record<string, Operation>> }>();
  const fill = (path: string) =>
    path
      .replace('{pullId}', `pull-${randomUUID()}`)
      .replace('{operation}', 'stop')
      .replace(/\{[^}]+\}/g, randomUUID());
  let checked = 0;
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      if (!['post', 'put', 'patch', 'delete'].includes(method)) continue;
      // The required fields are present (with any value: unknown fields are checked before the values).
      const required = operation.requestBody?.content?.['application/json']?.schema?.required ?? [];
      const res = await app.inject({
        method: method.toUpperCase() as 'POST',
        url: fill(path),
        headers: { ...bearer(admin), 'accept-language': 'en' }, // the DCU routes' messages in English
        payload: { ...Object.fromEntries(required.map((name) => [name, null])), zz_unknown: 1 },
      });
      assert.equal(res.statusCode, 400, `${method} ${path}: ${res.body}`);
      const text = path.startsWith('/api/dcu/') ? res.json().message : res.json().detail;
      assert.match(text, /unknown field "zz_unknown"/, `${method} ${path}: ${text}`);
      checked++;
    }
  }
  assert.ok(checked >= 8, `checked ${checked} routes`);
});

test('DCU routes refuse the same input in their envelope', async (t) => {
  const app = await buildTestApp(t);
  const user = await createUser(app);
  const english = { ...bearer(user.token), 'accept-language': 'en' };
  const start = (payload: object) => app.inject({ method: 'POST', url: '/api/dcu/start', headers: english, payload });
  assertEnvelope(await start({ username: user.username, docker_image_name: 'busybox\u0000' }), /docker_image_name/);
  assertEnvelope(await start({ username: `${user.username}\u0000`, docker_image_name: 'busybox' }), /username/);
  assertEnvelope(await start({ username: user.username, docker_image_name: 'busybox', host: 'host-a\u0000' }), /host/);
  assertEnvelope(await start({ username: user.username, docker_image_name: 'busybox', priority: 1 }), /unknown field "priority"/);
  assertEnvelope(await start({ username: user.username, docker_image_name: ['busybox'] }), /docker_image_name must be string/);
  const get = (url: string) => app.inject({ method: 'GET', url, headers: english });
  assertEnvelope(await get('/api/dcu/query?username=%00'), /Invalid querystring: username must not contain control characters/);
  assertEnvelope(await get('/api/dcu/query?docker_image_name=a%00'), /docker_image_name/);
  assertEnvelope(await get('/api/dcu/status/a%00'), /Invalid params: task_id must not contain control characters/);
  assertEnvelope(await app.inject({ method: 'POST', url: `/api/dcu/cancel/${randomUUID()}`, headers: english, payload: { now: true } }), /unknown field "now"/);
  const tasks = await db().execute(sql`select count(*)::int as n from dcu_tasks where username = ${user.username}`);
  assert.equal((tasks.rows[0] as { n: number }).n, 0);
});

test('X-Request-Id: a short plain one is echoed, anything else is replaced', async (t) => {
  const app = await buildTestApp(t);
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const send = (id: string) => app.inject({ method: 'GET', url: '/api/v1/nothing-here', headers: { 'x-request-id': id } });

  for (const id of ['trace-123', 'a'.repeat(64), 'svc.api:7f3a_B-2']) {
    const res = await send(id);
    assert.equal(res.headers['x-request-id'], id);
    assert.equal(res.json().requestId, id);
  }
  for (const id of ['a'.repeat(65), 'x'.repeat(8000), 'has space', '<script>alert(1)</script>', 'quote"d', 'semi;colon', 'ünïcode', 'a/b']) {
    const res = await send(id);
    const given = res.headers['x-request-id'] as string;
    assert.match(given, uuid, `${id.slice(0, 20)} replaced`);
    assert.equal(res.json().requestId, given);
  }
  assert.match((await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': '' } })).headers['x-request-id'] as string, uuid);
});

test('a database error is logged with its SQL and code, never with its parameters', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const database = connectDatabase(baseConfig.database.url, { max: 2 });
  const temporal = await connectTemporal(baseConfig.temporal);
  const app: App = await buildApp({ config: baseConfig, db: database.db, temporal, logger: pino({ level: 'info' }, sink) });
  t.after(async () => {
    await app.close();
    await temporal.connection.close();
    await database.close();
  });
  const secret = `s3cret-${randomUUID()}`;
  // Test-only routes that fail in the database with the secret as a parameter.
  app.get('/test/db-error/cast', { config: { public: true } }, async () => {
    await database.db.execute(sql`select ${secret}::int as n`);
    return {};
  });
  app.get('/test/db-error/check', { config: { public: true } }, async () => {
    await database.db.transaction(async (tx) => {
      await tx.execute(sql`create temp table input_test_t (v text check (v = 'only this')) on commit drop`);
      await tx.execute(sql`insert into input_test_t (v) values (${secret})`);
    });
    return {};
  });
  app.get('/test/db-error/builder', { config: { public: true } }, async () => {
    await database.db.select().from(users).where(and(eq(users.id, secret), eq(users.username, secret)));
    return {};
  });

  for (const [url, code] of [
    ['/test/db-error/cast', '22P02'],
    ['/test/db-error/check', '23514'],
    ['/test/db-error/builder', '22P02'],
  ] as const) {
    lines.length = 0;
    const res = await app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 500, res.body);
    assert.doesNotMatch(res.body, /s3cret|select|insert/i, 'the client sees nothing');
    const logged = lines.join('');
    const record = lines.map((l) => JSON.parse(l)).find((l) => l.err);
    assert.ok(record, `an error was logged for ${url}: ${logged}`);
    assert.ok(!logged.includes(secret), `${url}: the parameter is not in the log: ${logged}`);
    assert.doesNotMatch(logged, /params:/);
    assert.match(record.err.message, /Failed query: (select|insert)/, logged);
    assert.match(record.err.query, /\$1/);
    assert.equal(record.err.cause.code, code, logged);
    if (code === '23514') assert.equal(record.err.cause.constraint, 'input_test_t_v_check');
  }
});

test('serializeError: the SQL, code and constraint stay; params, detail and quoted input go', () => {
  const secret = 'top-secret-env-value';
  const pgError = Object.assign(new Error(`invalid input syntax for type uuid: "${secret}"`), {
    name: 'error',
    code: '22P02',
    severity: 'ERROR',
    routine: 'string_to_uuid',
    detail: `Failing row contains (${secret}).`,
    where: `unnamed portal parameter $1 = '${secret}'`,
    constraint: undefined,
  });
  const query = new Error(`Failed query: insert into containers (env) values ($1)\nparams: ${secret}`);
  Object.assign(query, { query: 'insert into containers (env) values ($1)', params: [secret], cause: pgError });
  const wrapped = new Error('creating the container failed', { cause: query });
  for (const err of [query, wrapped]) {
    const out = JSON.stringify(serializeError(err));
    assert.ok(!out.includes(secret), out);
    assert.match(out, /insert into containers \(env\) values \(\$1\)/);
    assert.match(out, /22P02/);
  }
  // Errors with nothing of the database in them keep pino's standard form.
  const plain = serializeError(new TypeError('boom')) as { type: string; message: string; stack: string };
  assert.equal(plain.type, 'TypeError');
  assert.equal(plain.message, 'boom');
  assert.match(plain.stack, /TypeError: boom/);
});

test('the validator: intersections and nested objects in bodies are closed; query strings stay coerced and open', () => {
  const compiler = (validatorFactory() as unknown as (ext: object, opts: object) => (route: object) => ((data: unknown) => boolean) & { errors?: Array<{ keyword: string; params: Record<string, unknown> }> })({}, {});
  const compile = (schema: unknown, httpPart: string) => compiler({ schema, method: 'POST', url: '/x', httpPart });

  const body = compile(
    Type.Intersect([
      Type.Object({ a: Type.String() }),
      Type.Object({ b: Type.Optional(Type.Object({ c: Type.Integer() })) }),
    ]),
    'body',
  );
  assert.equal(body({ a: 'x', b: { c: 1 } }), true);
  assert.equal(body({ a: 'x', z: 1 }), false);
  assert.deepEqual(body.errors?.[0]?.params, { additionalProperty: 'z' });
  assert.equal(body({ a: 'x', b: { c: 1, d: 2 } }), false, 'a nested object is closed too');
  assert.equal(body({ a: 'x', b: { c: '1' } }), false, 'no coercion');
  assert.equal(body({ a: 'x\u0000' }), false);
  assert.equal(body.errors?.[0]?.keyword, 'x-control-chars');

  const query = compile(Type.Object({ n: Type.Integer({ default: 3 }), s: Type.Optional(Type.String()) }), 'querystring');
  const q: Record<string, unknown> = { n: '5', extra: 'kept' };
  assert.equal(query(q), true);
  assert.deepEqual(q, { n: 5, extra: 'kept' });
  const empty: Record<string, unknown> = {};
  assert.equal(query(empty), true);
  assert.deepEqual(empty, { n: 3 });
  assert.equal(query({ s: 'a\u007fb' }), false);
});

test('an activity’s database error leaves without its parameters (what a workflow history and a stateReason keep)', async () => {
  const secret = `s3cret-${randomUUID()}`;
  const failing = [
    testDb().db.execute(sql`select ${secret}::int as n`),
    testDb().db.insert(users).values({ username: secret, passwordHash: 'x', balance: -1 }),
  ];
  for (const query of failing) {
    const error = await query.then(() => assert.fail('the query should fail'), (e: unknown) => e);
    assert.match(String((error as Error).message), new RegExp(secret), 'drizzle writes the parameters into its message');
    const scrubbed = withoutQueryParams(error) as Error & { code?: string };
    assert.equal(scrubbed.name, 'DatabaseError');
    assert.match(scrubbed.message, /^Failed query: /);
    assert.doesNotMatch(scrubbed.message, new RegExp(secret));
    assert.doesNotMatch(scrubbed.stack ?? '', new RegExp(secret));
    assert.match(scrubbed.code ?? '', /^(22P02|23514)$/, 'pg’s SQLSTATE stays');
  }
  const other = new Error('not a database error');
  assert.equal(withoutQueryParams(other), other);
});
