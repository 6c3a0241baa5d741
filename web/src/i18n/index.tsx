/**
 * Languages: English and Simplified Chinese, chosen from navigator.languages on the first
 * visit, switchable, kept in localStorage. Dates in the browser's time zone, money from
 * minor units with two decimals, both formatted by Intl for the chosen language.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { setRequestLanguage } from '../api/client';
import { en, type MessageKey, type Messages } from './en';
import { zhCN } from './zh-CN';

export const LANGUAGES = { en: { label: 'English', messages: en }, 'zh-CN': { label: '简体中文', messages: zhCN } } as const;
export type Language = keyof typeof LANGUAGES;
const STORAGE_KEY = 'berth.language';

const isLanguage = (value: unknown): value is Language => typeof value === 'string' && Object.hasOwn(LANGUAGES, value);

/** The stored choice, else the first of the browser's languages the console speaks, else English. */
export function initialLanguage(): Language {
  let stored: string | null = null;
  try {
    stored = window.localStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage can be disabled; the browser's languages decide then.
  }
  if (isLanguage(stored)) return stored;
  for (const tag of navigator.languages) {
    const lower = tag.toLowerCase();
    if (lower.startsWith('zh')) return 'zh-CN';
    if (lower.startsWith('en')) return 'en';
  }
  return 'en';
}

type Translate = <K extends MessageKey>(key: K, ...args: Messages[K] extends (...a: infer A) => string ? A : []) => string;

export interface I18n {
  lang: Language;
  setLang: (lang: Language) => void;
  t: Translate;
  money: (minor: number) => string;
  date: (value: string | null | undefined) => string;
  bytes: (value: number | null | undefined) => string;
  number: (value: number, fractionDigits?: number) => string;
}

const I18nContext = createContext<I18n | null>(null);

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Language>(initialLanguage);

  useEffect(() => {
    document.documentElement.lang = lang;
    setRequestLanguage(lang);
  }, [lang]);

  const setLang = useCallback((next: Language) => {
    try {
      window.localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // Not kept across visits when storage is disabled.
    }
    setRequestLanguage(next);
    setLangState(next);
  }, []);

  const value = useMemo<I18n>(() => {
    const messages: Messages = LANGUAGES[lang].messages;
    const t: Translate = (key, ...args) => {
      const message = messages[key] as string | ((...a: unknown[]) => string);
      return typeof message === 'function' ? message(...args) : message;
    };
    const moneyFormat = new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    const dateFormat = new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'medium' });
    const numberFormats = new Map<number, Intl.NumberFormat>();
    const number = (value: number, fractionDigits = 0) => {
      let format = numberFormats.get(fractionDigits);
      if (!format) {
        format = new Intl.NumberFormat(lang, { minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits });
        numberFormats.set(fractionDigits, format);
      }
      return format.format(value);
    };
    return {
      lang,
      setLang,
      t,
      // Integer minor units (1250 is 12.50): two decimals, always.
      money: (minor) => moneyFormat.format(minor / 100),
      date: (value) => {
        if (!value) return '—';
        const parsed = new Date(value);
        return Number.isNaN(parsed.getTime()) ? value : dateFormat.format(parsed);
      },
      bytes: (value) => {
        if (value === null || value === undefined) return '—';
        let n = value;
        let unit = 0;
        while (n >= 1024 && unit < UNITS.length - 1) {
          n /= 1024;
          unit += 1;
        }
        return `${number(n, unit === 0 ? 0 : 1)} ${UNITS[unit]}`;
      },
      number,
    };
  }, [lang, setLang]);

  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const value = useContext(I18nContext);
  if (!value) throw new Error('useI18n outside I18nProvider');
  return value;
}

/** An error as the user reads it: the API's detail, or a translated network failure. */
export function useErrorText(): (error: unknown) => string {
  const { t } = useI18n();
  return useCallback(
    (error: unknown) => {
      if (error instanceof Error && error.name === 'NetworkError') return t('error.network');
      if (error instanceof Error && error.message) return error.message;
      return t('error.generic');
    },
    [t],
  );
}
