// ESLint for Berth: typescript-eslint's recommended type-checked rules, floating and misused
// promises as errors, and the Temporal workflow-sandbox rules on every file a workflow can
// load. No formatting rules: tsc checks types, this checks defects.
import { builtinModules } from 'node:module';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import ts from 'typescript';

const root = import.meta.dirname;

// ---------------------------------------------------------------- workflow sandbox scope
// Workflow code is bundled by webpack and run in Temporal's sandbox. The rules below apply to
// workflows/ and contracts/ and to every module they import at run time (`import type` is
// erased and does not count), computed here so that a core/ module a workflow starts to import
// is checked from then on, and one it stops importing is no longer held to the sandbox.
const WORKFLOW_ROOTS = ['workflows', 'contracts'];

function tsFilesUnder(dir) {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true })
    .map((name) => join(abs, String(name)))
    .filter((file) => file.endsWith('.ts') && statSync(file).isFile());
}

function resolveRelative(fromFile, specifier) {
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [base.replace(/\.(c|m)?js$/, '.$1ts'), base, `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((file) => file.endsWith('.ts') && existsSync(file) && statSync(file).isFile());
}

// Relative specifiers of a file's run-time imports and re-exports. `import { type A } from`
// counts as run time: under verbatimModuleSyntax it is kept as `import {} from`.
function runtimeImports(file) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  const specifiers = [];
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement) && !statement.importClause?.isTypeOnly) {
      specifiers.push(statement.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(statement) && !statement.isTypeOnly && statement.moduleSpecifier) {
      specifiers.push(statement.moduleSpecifier.text);
    }
  }
  return specifiers.filter((specifier) => specifier.startsWith('.'));
}

function workflowReachableFiles() {
  const seen = new Set();
  const queue = WORKFLOW_ROOTS.flatMap(tsFilesUnder);
  while (queue.length > 0) {
    const file = queue.pop();
    if (seen.has(file) || file.split(sep).includes('node_modules')) continue;
    seen.add(file);
    for (const specifier of runtimeImports(file)) {
      const target = resolveRelative(file, specifier);
      if (target !== undefined && !relative(root, target).startsWith('..')) queue.push(target);
    }
  }
  return [...seen]
    .map((file) => relative(root, file).split(sep).join('/'))
    .filter((file) => !WORKFLOW_ROOTS.includes(file.split('/')[0]))
    .sort();
}

// Modules the sandbox cannot load. The Node built-ins and the @temporalio packages are the
// SDK's own list (@temporalio/worker lib/workflow/bundler.js `disallowedModules`: the bundle
// fails on them); the rest are Berth's side-effect clients (README: "dockerode, minio, pg,
// drizzle and fastify must never be reachable from workflow files"). Type imports are fine.
// Like samples-typescript's .eslintrc.js we allow `assert` (the sandbox provides it).
const ALLOWED_NODE_BUILTINS = new Set(['assert']);
const SANDBOX_MESSAGE = 'cannot run in the Temporal workflow sandbox: do this in an activity (`import type` is fine).';
// Regular expressions for a module name and its subpaths (`minio/dist/...`).
const NODE_ONLY_PACKAGES = [
  '@temporalio/(activity|client|worker|testing|core-bridge)',
  '@temporalio/common/lib/internal-non-workflow',
  '@temporalio/interceptors-opentelemetry(-v2)?/lib/(client|worker)',
  'dockerode',
  'minio',
  'pg',
  'drizzle-orm',
  'fastify',
  'fastify-plugin',
  '@fastify/[^/]+',
  'pino',
  'ws',
  'prom-client',
  '@node-rs/[^/]+',
];
const workflowImportRestrictions = {
  paths: builtinModules
    .filter((name) => !ALLOWED_NODE_BUILTINS.has(name) && !name.startsWith('_'))
    .map((name) => ({ name, message: `Node built-in '${name}' ${SANDBOX_MESSAGE}`, allowTypeImports: true })),
  patterns: [
    {
      regex: '^node:',
      message: `Node built-ins ${SANDBOX_MESSAGE}`,
      allowTypeImports: true,
    },
    {
      regex: `^(${NODE_ONLY_PACKAGES.join('|')})(/|$)`,
      message: `This package ${SANDBOX_MESSAGE}`,
      allowTypeImports: true,
    },
    {
      // CONVENTIONS 5: no run-time imports of db/, api/, activities/, services/, repositories/ or workers/.
      regex: '(^|/)(activities|api|db|repositories|services|workers)/',
      message: 'Workflow code imports activities, services, repositories, db, api and workers only as types (`import type`).',
      allowTypeImports: true,
    },
  ],
};

// Globals the sandbox does not have, or that break determinism. The samples restrict imports
// only; these are what the SDK's sandbox actually lacks (worker lib/workflow/vm-shared.js
// injects only URL, URLSearchParams, assert, TextEncoder, TextDecoder, AbortController,
// console and AsyncLocalStorage into a bare vm context) and @types/node makes them type-check,
// so only lint catches them before a workflow task fails at run time.
// Deliberately NOT restricted, as in samples-typescript: Math.random, Date, Date.now,
// setTimeout and clearTimeout, which the SDK replaces with deterministic versions
// (workflow lib/global-overrides.js: the workflow's random seed, the activation time, durable
// timers); prefer sleep() and uuid4() from @temporalio/workflow for readability anyway.
const sandboxGlobal = (name, advice) => ({ name, message: `'${name}' ${advice}` });
const ABSENT = 'does not exist in the Temporal workflow sandbox (a ReferenceError at run time): use an activity.';
const workflowGlobalRestrictions = [
  ...['process', 'Buffer', 'require', 'module', 'exports', '__dirname', '__filename', 'global'].map((n) =>
    sandboxGlobal(n, ABSENT),
  ),
  ...['fetch', 'Request', 'Response', 'Headers', 'WebSocket', 'performance', 'navigator'].map((n) =>
    sandboxGlobal(n, ABSENT),
  ),
  sandboxGlobal('crypto', `${ABSENT} For ids use uuid4() from @temporalio/workflow.`),
  sandboxGlobal('structuredClone', ABSENT),
  ...['setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'queueMicrotask'].map((n) =>
    sandboxGlobal(n, `${ABSENT} Use sleep()/condition() from @temporalio/workflow.`),
  ),
  ...['WeakRef', 'FinalizationRegistry'].map((n) =>
    sandboxGlobal(n, 'throws DeterminismViolationError in workflows (garbage collection is not deterministic).'),
  ),
];

// ---------------------------------------------------------------- the configuration
export default defineConfig(
  // web/src/api/schema.d.ts is generated (npm run web:api-types).
  globalIgnores(['dist/', 'coverage/', 'test/fixtures/', 'web/dist/', 'web/src/api/schema.d.ts']),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The two rules this configuration exists for: a promise nobody awaits (an activity or
      // workflow call, a reply, a query) and a promise where a void callback is expected.
      // node:test's test()/describe() return promises the runner itself tracks.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // no-explicit-any stays an error (recommended; the code has none): use unknown and narrow.
      // Off: Fastify plugins and hooks are async by contract (FastifyPluginAsync), with or
      // without an await inside; this rule only flags that signature.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests and benchmarks read HTTP replies as `any` (inject's res.json()) and hand activity
    // methods to MockActivityEnvironment.run(); the no-unsafe-* family (over 600 reports there,
    // none a defect) and unbound-method stay on for the code that ships.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // The console (web/src, its own web/tsconfig.json, found by the project service): the same
    // type-aware rules, and React's rules of hooks (exhaustive effect dependencies as errors).
    files: ['web/src/**/*.ts', 'web/src/**/*.tsx'],
    extends: [reactHooks.configs.flat['recommended-latest']],
    rules: { 'react-hooks/exhaustive-deps': 'error' },
  },
  {
    // This file is plain JavaScript outside tsconfig.json: no type-aware rules for it.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: [...WORKFLOW_ROOTS.map((dir) => `${dir}/**/*.ts`), ...workflowReachableFiles()],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': ['error', workflowImportRestrictions],
      'no-restricted-globals': ['error', ...workflowGlobalRestrictions],
      // `import { type A } from 'x'` keeps `import {} from 'x'` (verbatimModuleSyntax), which
      // loads x into the workflow bundle: write `import type { A } from 'x'`.
      '@typescript-eslint/no-import-type-side-effects': 'error',
    },
  },
);
