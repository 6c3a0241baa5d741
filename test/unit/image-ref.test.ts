import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  InvalidReferenceError,
  parseImageReference,
  registryHost,
  safeObjectComponent,
  type ImageRef,
} from '../../core/image-ref.js';

const HEX64 = 'a'.repeat(32) + '0123456789abcdef'.repeat(2);
const SHA = `sha256:${HEX64}`;

function rejects(input: string, reason?: RegExp): InvalidReferenceError {
  let caught: unknown;
  try {
    parseImageReference(input);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof InvalidReferenceError, `expected ${JSON.stringify(input)} to be rejected`);
  assert.ok(caught instanceof Error);
  assert.equal(caught.name, 'InvalidReferenceError');
  assert.equal(caught.message, caught.reason);
  if (reason) assert.match(caught.reason, reason, `reason for ${JSON.stringify(input)}`);
  return caught;
}

function ref(input: string): ImageRef {
  return parseImageReference(input);
}

test('bare official image gets docker.io, library/ and latest', () => {
  assert.deepEqual(ref('busybox'), {
    domain: 'docker.io',
    path: 'library/busybox',
    repository: 'docker.io/library/busybox',
    tag: 'latest',
    reference: 'docker.io/library/busybox:latest',
    familiar: 'busybox:latest',
  });
});

test('no digest property when there is no digest, no tag property when digest-only', () => {
  const plain = ref('busybox:1.36');
  assert.equal('digest' in plain, false);
  const pinned = ref(`busybox@${SHA}`);
  assert.equal('tag' in pinned, false);
});

test('normalized reference examples', () => {
  const cases: Array<[string, string, string]> = [
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1', 'busybox:1'],
    ['index.docker.io/user/app', 'docker.io/user/app:latest', 'user/app:latest'],
    ['user/app:1.0', 'docker.io/user/app:1.0', 'user/app:1.0'],
    ['docker.io/user/app:1.0', 'docker.io/user/app:1.0', 'user/app:1.0'],
    ['library/distros/ubuntu', 'docker.io/library/distros/ubuntu:latest', 'library/distros/ubuntu:latest'],
    ['localhost/foo', 'localhost/foo:latest', 'localhost/foo:latest'],
    ['localhost:5000/foo/bar:dev', 'localhost:5000/foo/bar:dev', 'localhost:5000/foo/bar:dev'],
    [
      '127.0.0.1:5000/library/busybox',
      '127.0.0.1:5000/library/busybox:latest',
      '127.0.0.1:5000/library/busybox:latest',
    ],
    [
      '127.0.0.1:5000/library/busybox:1.35',
      '127.0.0.1:5000/library/busybox:1.35',
      '127.0.0.1:5000/library/busybox:1.35',
    ],
    ['127.0.0.1:5000/busybox', '127.0.0.1:5000/busybox:latest', '127.0.0.1:5000/busybox:latest'],
    ['ghcr.io/org/team/app:v1.2.3', 'ghcr.io/org/team/app:v1.2.3', 'ghcr.io/org/team/app:v1.2.3'],
    ['registry.example.com:443/a/b', 'registry.example.com:443/a/b:latest', 'registry.example.com:443/a/b:latest'],
  ];
  for (const [input, reference, familiar] of cases) {
    const r = ref(input);
    assert.equal(r.reference, reference, input);
    assert.equal(r.familiar, familiar, input);
    assert.equal(r.repository, `${r.domain}/${r.path}`, input);
  }
});

test('a port colon is not a tag', () => {
  const r = ref('127.0.0.1:5000/library/busybox');
  assert.equal(r.domain, '127.0.0.1:5000');
  assert.equal(r.path, 'library/busybox');
  assert.equal(r.tag, 'latest');
  assert.equal(registryHost(r), '127.0.0.1:5000');
});

test('a single component is never a domain (Docker: localhost:5000 is library/localhost, tag 5000)', () => {
  const r = ref('localhost:5000');
  assert.equal(r.reference, 'docker.io/library/localhost:5000');
  assert.equal(r.tag, '5000');
  assert.equal(ref('example.com').reference, 'docker.io/library/example.com:latest');
});

test('domain detection follows splitDockerDomain', () => {
  // no '.' or ':' and not localhost: a Docker Hub namespace
  assert.equal(ref('myregistry/app').domain, 'docker.io');
  assert.equal(ref('myregistry/app').path, 'myregistry/app');
  // '.' or ':' makes it a domain
  assert.equal(ref('my.registry/app').domain, 'my.registry');
  assert.equal(ref('myregistry:5000/app').domain, 'myregistry:5000');
  // an uppercase first component is a domain (namespaces cannot be uppercase)
  const upper = ref('MyRegistry/app');
  assert.equal(upper.domain, 'MyRegistry');
  assert.equal(upper.reference, 'MyRegistry/app:latest');
  assert.equal(registryHost(upper), 'myregistry');
  // non-Hub domains do not get library/
  assert.equal(ref('localhost/busybox').path, 'busybox');
  assert.equal(ref('quay.io/busybox').path, 'busybox');
});

test('IPv6 domains in brackets, with and without a port', () => {
  const r = ref('[::1]:5000/foo');
  assert.equal(r.domain, '[::1]:5000');
  assert.equal(r.path, 'foo');
  assert.equal(r.reference, '[::1]:5000/foo:latest');
  assert.equal(r.familiar, '[::1]:5000/foo:latest');
  assert.equal(registryHost(r), '[::1]:5000');
  assert.equal(ref('[2001:db8::1]/team/app:2').reference, '[2001:db8::1]/team/app:2');
  rejects('::1/foo', /invalid reference format/);
  rejects('[::1/foo');
  rejects('[fe80::1%eth0]:5000/foo');
});

test('invalid domains and ports are rejected', () => {
  rejects('example.com:/foo');
  rejects('example.com:http/foo');
  rejects('-example.com/foo');
  rejects('example-.com/foo');
  rejects('example..com/foo');
  rejects('my_registry.local/app', /invalid registry domain/);
});

test('digests: digest-only keeps the digest and gets no tag', () => {
  const r = ref(`busybox@${SHA}`);
  assert.equal(r.digest, SHA);
  assert.equal(r.tag, undefined);
  assert.equal(r.reference, `docker.io/library/busybox@${SHA}`);
  assert.equal(r.familiar, `busybox@${SHA}`);
  const local = ref(`127.0.0.1:5000/library/busybox@${SHA}`);
  assert.equal(local.reference, `127.0.0.1:5000/library/busybox@${SHA}`);
  assert.equal(local.tag, undefined);
});

test('digests: tag and digest are both kept', () => {
  const r = ref(`user/app:1.0@${SHA}`);
  assert.equal(r.tag, '1.0');
  assert.equal(r.digest, SHA);
  assert.equal(r.reference, `docker.io/user/app:1.0@${SHA}`);
  assert.equal(r.familiar, `user/app:1.0@${SHA}`);
  assert.equal(ref(`localhost:5000/app:dev@${SHA}`).reference, `localhost:5000/app:dev@${SHA}`);
});

test('digests: sha384 and sha512 lengths', () => {
  assert.equal(ref(`app@sha384:${'b'.repeat(96)}`).digest, `sha384:${'b'.repeat(96)}`);
  assert.equal(ref(`app@sha512:${'c'.repeat(128)}`).digest, `sha512:${'c'.repeat(128)}`);
  rejects(`app@sha512:${'c'.repeat(64)}`, /sha512 needs 128 hex characters/);
});

test('digests: invalid ones are rejected', () => {
  rejects(`busybox@sha256:${HEX64.slice(0, 63)}`, /sha256 needs 64 hex characters/);
  rejects(`busybox@sha256:${HEX64}0`, /sha256 needs 64 hex characters/);
  rejects(`busybox@sha256:${'abc'.repeat(5)}`, /invalid digest/); // fewer than 32 hex
  rejects(`busybox@sha256:${HEX64.toUpperCase()}`, /lowercase/);
  rejects(`busybox@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/);
  rejects(`busybox@foo+bar:${'a'.repeat(64)}`, /unsupported digest algorithm/);
  rejects(`busybox@sha256:${'g'.repeat(64)}`, /invalid digest/);
  rejects('busybox@', /invalid digest/);
  rejects(`busybox@${HEX64}`, /invalid digest/);
  rejects(`busybox@${SHA}@${SHA}`);
  rejects(`busybox@${SHA}:tag`);
  rejects(`@${SHA}`);
});

test('a bare 64-hex identifier is not a repository name', () => {
  rejects(HEX64, /64-byte hexadecimal/);
  // a shorter hex string is an ordinary name
  assert.equal(ref(HEX64.slice(0, 12)).path, `library/${HEX64.slice(0, 12)}`);
});

test('uppercase repository names are rejected as Docker does', () => {
  for (const input of ['Busybox', 'busyBox:latest', 'user/App', 'docker.io/Busybox', 'ghcr.io/Org/app', `user/App@${SHA}`]) {
    rejects(input, /repository name must be lowercase/);
  }
  rejects('localhost/Foo', /repository name must be lowercase/);
  // tags may contain uppercase letters
  assert.equal(ref('busybox:Latest').tag, 'Latest');
  assert.equal(ref('busybox:V1_RC.2-x').tag, 'V1_RC.2-x');
});

test('empty input and whitespace are rejected (no trimming)', () => {
  rejects('', /reference is empty/);
  rejects(' ', /whitespace/);
  rejects(' busybox');
  rejects('busybox ');
  rejects('busybox\n');
  rejects('busy box');
  rejects('busybox:\tlatest');
});

test('tags: grammar [\\w][\\w.-]{0,127}', () => {
  assert.equal(ref('app:_x').tag, '_x');
  assert.equal(ref('app:1').tag, '1');
  assert.equal(ref(`app:${'t'.repeat(128)}`).tag, 't'.repeat(128));
  rejects(`app:${'t'.repeat(129)}`, /invalid tag/);
  rejects('app:', /invalid tag/);
  rejects('app:.hidden', /invalid tag/);
  rejects('app:-dash', /invalid tag/);
  rejects('app:a+b', /invalid tag/);
  rejects('app:a/b');
  rejects('app:a:b', /invalid tag/);
  rejects('app:ümlaut', /invalid tag/);
  rejects('app:a$b', /invalid tag/);
});

test('path components: separators ., _, __ and runs of -', () => {
  assert.equal(ref('a__b').path, 'library/a__b');
  assert.equal(ref('a_b.c-d').path, 'library/a_b.c-d');
  assert.equal(ref('a---b/c--d').path, 'a---b/c--d');
  assert.equal(ref('foo/bar__baz/qux-1').reference, 'docker.io/foo/bar__baz/qux-1:latest');
  for (const bad of ['a___b', 'a..b', 'a._b', '_a', 'a_', '-a', 'a-', '.a', 'a.', 'foo//bar', 'foo/', '/foo', 'foo/-bar', 'a/b/', 'example.com/', 'example.com//foo']) {
    rejects(bad);
  }
});

test('names longer than 255 characters are rejected', () => {
  // docker.io/ (10) + 245 = 255: the longest acceptable repository
  const ns = 'n'.repeat(100);
  const longest = `${ns}/${'x'.repeat(255 - 10 - 101)}`;
  const ok = ref(longest);
  assert.equal(ok.repository.length, 255);
  rejects(`${longest}x`, /longer than 255 characters/);
  rejects('a'.repeat(300), /longer than 255 characters/);
  // the tag and digest do not count towards the name limit
  const withTagAndDigest = ref(`${longest}:${'t'.repeat(128)}@${SHA}`);
  assert.equal(withTagAndDigest.tag?.length, 128);
  // absurd inputs are rejected up front
  rejects('a'.repeat(100_000), /longer than/);
});

test('other malformed references', () => {
  for (const bad of ['busybox:latest:1', 'busy@box', 'busybox!', 'busybox?', 'busy\u0000box', '\u00e9t\u00e9', ':latest', '@', '/', '//', 'docker.io/', 'a/b:c/d']) {
    rejects(bad);
  }
});

test('InvalidReferenceError keeps the input, shortened for logs', () => {
  const err = rejects(`${'a'.repeat(500)}!`);
  assert.ok(err.input.length <= 301);
  assert.equal(rejects('Busy').input, 'Busy');
});

test('registryHost', () => {
  assert.equal(registryHost(ref('busybox')), 'docker.io');
  assert.equal(registryHost(ref('index.docker.io/user/app')), 'docker.io');
  assert.equal(registryHost(ref('ghcr.io/org/app')), 'ghcr.io');
  assert.equal(registryHost(ref('localhost:5000/app')), 'localhost:5000');
  assert.equal(registryHost(ref('Registry.Example.com/app')), 'registry.example.com');
});

test('parsing is idempotent on the normalized reference', () => {
  for (const input of ['busybox', 'user/app:1.0', `busybox@${SHA}`, `a/b:c@${SHA}`, '[::1]:5000/foo', 'localhost/foo', '127.0.0.1:5000/library/busybox']) {
    const once = ref(input);
    assert.deepEqual(ref(once.reference), once, input);
    assert.deepEqual(ref(once.familiar), once, input);
  }
});

test('safeObjectComponent: path traversal is impossible', () => {
  const out = safeObjectComponent('../../etc/passwd');
  assert.equal(out.includes('/'), false);
  assert.equal(out.startsWith('.'), false);
  assert.match(out, /^[A-Za-z0-9._-]+$/);
  assert.equal(out, '__.._etc_passwd');
  assert.notEqual(safeObjectComponent('.'), '.');
  assert.notEqual(safeObjectComponent('..'), '..');
  assert.equal(safeObjectComponent('.'), '_');
  assert.equal(safeObjectComponent('..'), '_');
  assert.equal(safeObjectComponent('...hidden'), '_hidden');
  assert.equal(safeObjectComponent('a\\b'), 'a_b');
});

test('safeObjectComponent: character set, length and empty input', () => {
  assert.equal(safeObjectComponent('docker.io/library/busybox:latest'), 'docker.io_library_busybox_latest');
  assert.equal(safeObjectComponent('Keep-Me_1.2'), 'Keep-Me_1.2');
  assert.equal(safeObjectComponent(''), '_');
  assert.equal(safeObjectComponent('a b\u0000c\u00e9'), 'a_b_c_');
  assert.equal(safeObjectComponent('x'.repeat(500)).length, 128);
  for (const input of ['', '.', '..', '/', '../', '..\\..', '%2e%2e', '\u2024\u2024', '😀', 'a/./b', '.'.repeat(300)]) {
    const out = safeObjectComponent(input);
    assert.match(out, /^[A-Za-z0-9._-]{1,128}$/, JSON.stringify(input));
    assert.equal(out.startsWith('.'), false, JSON.stringify(input));
    assert.notEqual(out, '.');
    assert.notEqual(out, '..');
  }
});
