/** Sign in: "Username", "Password", "Sign in"; a refusal is an alert, a throttled login says when to try again. */
import { useState, type FormEvent } from 'react';
import { ApiError } from '../api/client';
import { useI18n, useErrorText } from '../i18n';
import { useSession } from '../lib/session';
import { LanguageSelect } from '../components/LanguageSelect';
import { ErrorAlert, Page } from '../components/ui';

export function SignInPage() {
  const { t, lang } = useI18n();
  const errorText = useErrorText();
  const { signIn } = useSession();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(undefined);
    try {
      await signIn(username, password);
    } catch (err) {
      if (err instanceof ApiError && err.status === 429 && err.retryAfter !== undefined) {
        const at = new Date(Date.now() + err.retryAfter * 1000).toLocaleTimeString(lang);
        setError(`${t('signin.throttled', err.retryAfter, at)} ${err.message}`);
      } else {
        setError(errorText(err));
      }
      setPassword('');
      setBusy(false);
    }
  };

  return (
    <main id="main" className="signin">
      <div className="card">
        <Page title={t('signin.title')} actions={<LanguageSelect />}>
          <form onSubmit={(event) => void submit(event)} className="stack">
            <label>
              {t('signin.username')}
              <input name="username" autoComplete="username" autoFocus required value={username} onChange={(e) => setUsername(e.target.value)} />
            </label>
            <label>
              {t('signin.password')}
              <input
                name="password"
                type="password"
                autoComplete="current-password"
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            </label>
            <ErrorAlert error={error} />
            <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
              {t('signin.submit')}
            </button>
          </form>
        </Page>
      </div>
    </main>
  );
}
