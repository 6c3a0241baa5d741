/** The language switch: a select labelled "Language" in both languages, kept in localStorage. */
import { useId } from 'react';
import { LANGUAGES, useI18n, type Language } from '../i18n';

export function LanguageSelect() {
  const { lang, setLang } = useI18n();
  const id = useId();
  return (
    <span className="language">
      <label htmlFor={id}>Language / 语言</label>
      <select id={id} value={lang} onChange={(event) => setLang(event.target.value as Language)}>
        {(Object.keys(LANGUAGES) as Language[]).map((code) => (
          <option key={code} value={code} lang={code}>
            {LANGUAGES[code].label}
          </option>
        ))}
      </select>
    </span>
  );
}
