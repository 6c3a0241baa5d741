/** The DCU API's language from Accept-Language (api/dcu-messages.ts): Chinese unless English comes first. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dcuErrorMessage, dcuLanguageOf, stateDisplay } from '../../api/dcu-messages.js';
import { DCU_STATES } from '../../core/dcu-state.js';
import { badRequest, notFound } from '../../core/errors.js';

test('English when the preferred tag is en or en-*; Chinese otherwise, and without the header', () => {
  const cases: Array<[string | undefined, 'en' | 'zh']> = [
    [undefined, 'zh'],
    ['', 'zh'],
    ['zh-CN', 'zh'],
    ['zh-CN,zh;q=0.9,en;q=0.8', 'zh'],
    ['fr-FR', 'zh'],
    ['*', 'zh'],
    ['english', 'zh'],
    ['en', 'en'],
    ['EN-us', 'en'],
    ['en-GB,zh-CN;q=0.5', 'en'],
    ['zh-CN;q=0.5, en-US', 'en'],
    ['en;q=0, zh', 'zh'],
    ['zh;q=0.8, en;q=0.9', 'en'],
    ['en;q=abc', 'zh'],
  ];
  for (const [header, expected] of cases) assert.equal(dcuLanguageOf(header), expected, String(header));
});

test('every state has a display in both languages; errors: the Chinese detail, else the status named before the English detail', () => {
  assert.deepEqual(DCU_STATES.map((s) => stateDisplay(s, 'zh')), ['等待中', '下载中', '压缩镜像中', '上传中', '已完成', '失败']);
  assert.deepEqual(DCU_STATES.map((s) => stateDisplay(s, 'en')), ['Idle', 'Downloading', 'Compressing', 'Uploading', 'Completed', 'Failed']);
  const translated = notFound('Task').withDetailZh('任务不存在。');
  assert.equal(dcuErrorMessage('zh', translated, 404, 'Task was not found.'), '任务不存在。');
  assert.equal(dcuErrorMessage('en', translated, 404, 'Task was not found.'), 'Task was not found.');
  assert.equal(dcuErrorMessage('zh', badRequest('x'), 400, 'Invalid body: x'), '请求无效：Invalid body: x');
  assert.equal(dcuErrorMessage('zh', new Error('boom'), 500, 'secret details'), '服务器内部错误');
  assert.equal(dcuErrorMessage('en', new Error('boom'), 500, 'secret details'), 'Internal Server Error');
});
