/** The signed-in frame: the header with the navigation, the language and "Sign out"; the page below. */
import type { ReactNode } from 'react';
import { useI18n } from '../i18n';
import { LanguageSelect } from './LanguageSelect';
import { Link, useLocation } from '../lib/router';
import { useSession } from '../lib/session';
import { useAction } from '../lib/hooks';
import { ErrorAlert } from './ui';
import type { TextKey } from '../i18n/en';

const USER_LINKS: [string, TextKey][] = [
  ['/', 'nav.dashboard'],
  ['/images', 'nav.images'],
  ['/containers', 'nav.containers'],
  ['/dcu', 'nav.dcu'],
  ['/ledger', 'nav.ledger'],
];
const ADMIN_LINKS: [string, TextKey][] = [
  ['/admin/users', 'nav.users'],
  ['/admin/hosts', 'nav.hosts'],
  ['/admin/releases', 'nav.releases'],
];

const isCurrent = (to: string, path: string) => (to === '/' ? path === '/' : path === to || path.startsWith(`${to}/`));

export function Layout({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  const { user, signOut } = useSession();
  const { path } = useLocation();
  const signingOut = useAction();
  const links = user.role === 'admin' ? [...USER_LINKS, ...ADMIN_LINKS] : USER_LINKS;
  return (
    <>
      <a className="skip" href="#main">
        {t('app.skip')}
      </a>
      <header className="top">
        <div className="brand">
          <Link to="/">{t('app.name')}</Link>
        </div>
        <nav aria-label={t('nav.label')}>
          <ul>
            {links.map(([to, key]) => (
              <li key={to}>
                <Link to={to} aria-current={isCurrent(to, path) ? 'page' : undefined}>
                  {t(key)}
                </Link>
              </li>
            ))}
          </ul>
          <button type="button" className="sign-out" disabled={signingOut.busy} onClick={() => void signingOut.run(signOut)}>
            {t('nav.signOut')}
          </button>
        </nav>
        <div className="who">
          <span className="muted">{t('app.signedInAs', user.username)}</span>
          <LanguageSelect />
        </div>
      </header>
      <main id="main">
        <ErrorAlert error={signingOut.error} />
        {children}
      </main>
    </>
  );
}
