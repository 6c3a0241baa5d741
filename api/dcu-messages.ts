/**
 * The DCU API's language. Its callers are the original service's, which spoke Simplified
 * Chinese: without an Accept-Language whose first choice is English (`en`, `en-US`, ...), the
 * envelope's `message` and a task's `state_display` are Chinese, as they were; with it, English.
 * Errors made with a Chinese detail (AppError.withDetailZh, where the values they name are at
 * hand) say it; any other error is named in Chinese by its status, its English detail after it.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../core/errors.js';
import { DCU_STATE_DISPLAY, DCU_STATE_DISPLAY_ZH, type DcuState } from '../core/dcu-state.js';

export type DcuLanguage = 'zh' | 'en';

/** The language an Accept-Language header asks for: English when its preferred tag is en or en-*, else Chinese. */
export function dcuLanguageOf(acceptLanguage: string | undefined): DcuLanguage {
  let best: { tag: string; q: number } | undefined;
  for (const part of (acceptLanguage ?? '').split(',')) {
    const [tag = '', ...params] = part.trim().split(';').map((p) => p.trim());
    if (!tag) continue;
    const qParam = params.find((p) => /^q=/i.test(p));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (!Number.isFinite(q) || q <= 0) continue;
    if (!best || q > best.q) best = { tag: tag.toLowerCase(), q };
  }
  return best && (best.tag === 'en' || best.tag.startsWith('en-')) ? 'en' : 'zh';
}

export const dcuLanguage = (request: FastifyRequest): DcuLanguage => dcuLanguageOf(request.headers['accept-language']);

/** The messages of successful answers. */
export const DCU_OK_MESSAGES = {
  ok: { en: 'success', zh: '成功' },
  started: { en: 'task started', zh: '任务已启动' },
  cancelRequested: { en: 'cancel requested', zh: '已请求取消' },
} as const satisfies Record<string, Record<DcuLanguage, string>>;

export const stateDisplay = (state: DcuState, language: DcuLanguage) => (language === 'en' ? DCU_STATE_DISPLAY : DCU_STATE_DISPLAY_ZH)[state];

/** What each error status is called, when the error has no Chinese detail of its own. */
const STATUS_ZH: Record<number, string> = {
  400: '请求无效',
  401: '未通过身份验证',
  403: '没有权限',
  404: '未找到',
  405: '不允许的请求方法',
  406: '无法接受',
  409: '冲突',
  410: '已删除',
  413: '请求体过大',
  414: 'URI 过长',
  415: '不支持的媒体类型',
  422: '无法处理',
  426: '需要升级协议',
  429: '请求过多',
};

/** The envelope's message for an error answered with this status and (English) detail. */
export function dcuErrorMessage(language: DcuLanguage, error: unknown, status: number, detail: string): string {
  if (status >= 500) return language === 'en' ? 'Internal Server Error' : '服务器内部错误'; // the details stay in the log
  if (language === 'en') return detail;
  if (error instanceof AppError && error.detailZh) return error.detailZh;
  return `${STATUS_ZH[status] ?? '请求失败'}：${detail}`;
}

/** The envelope's message when no route matches. */
export const noRouteMessage = (language: DcuLanguage, method: string, path: string) =>
  language === 'en' ? `No route ${method} ${path}.` : `没有此路由：${method} ${path}。`;
