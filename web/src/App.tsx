/** The console: who is signed in decides between the sign-in page and the pages, by URL. */
import { useEffect, type ReactNode } from 'react';
import { useI18n, useErrorText } from './i18n';
import { match, navigate, useLocation, Link } from './lib/router';
import { useSession } from './lib/session';
import { Layout } from './components/Layout';
import { ErrorAlert, Page } from './components/ui';
import { SignInPage } from './pages/SignIn';
import { DashboardPage } from './pages/Dashboard';
import { ImagesPage } from './pages/Images';
import { ContainersPage } from './pages/Containers';
import { ContainerPage } from './pages/Container';
import { DcuPage } from './pages/Dcu';
import { LedgerPage } from './pages/Ledger';
import { UsersPage } from './pages/admin/Users';
import { HostsPage } from './pages/admin/Hosts';
import { ReleasesPage } from './pages/admin/Releases';

interface Route {
  pattern: string;
  admin?: boolean;
  render: (params: Record<string, string>) => ReactNode;
}

/** The console's URLs (the API serves index.html for each: reload and back work). */
const ROUTES: Route[] = [
  { pattern: '/', render: () => <DashboardPage /> },
  { pattern: '/images', render: () => <ImagesPage /> },
  { pattern: '/containers', render: () => <ContainersPage /> },
  { pattern: '/containers/:id', render: ({ id }) => <ContainerPage key={id} id={id ?? ''} /> },
  { pattern: '/dcu', render: () => <DcuPage /> },
  { pattern: '/ledger', render: () => <LedgerPage /> },
  { pattern: '/admin/users', admin: true, render: () => <UsersPage /> },
  { pattern: '/admin/hosts', admin: true, render: () => <HostsPage /> },
  { pattern: '/admin/releases', admin: true, render: () => <ReleasesPage /> },
];

const SIGN_IN = '/signin';

/** Where to go after signing in: a path of the console only (never another origin). */
function nextOf(query: URLSearchParams): string {
  const next = query.get('next');
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith(SIGN_IN) ? next : '/';
}

export function App() {
  const { t } = useI18n();
  const errorText = useErrorText();
  const session = useSession();
  const { path, href } = useLocation();
  const status = session.state.status;
  const bySignOut = session.state.status === 'signedOut' && session.state.bySignOut === true;

  // Signed out: to the sign-in page, which comes back here after (not after "Sign out").
  useEffect(() => {
    if (status === 'signedOut' && path !== SIGN_IN) {
      navigate(path === '/' || bySignOut ? SIGN_IN : `${SIGN_IN}?next=${encodeURIComponent(href)}`, { replace: !bySignOut });
    } else if (status === 'signedIn' && path === SIGN_IN) {
      navigate(nextOf(new URL(href, window.location.origin).searchParams), { replace: true });
    }
  }, [status, bySignOut, path, href]);

  if (session.state.status === 'failed') {
    return (
      <main id="main" className="centered">
        <ErrorAlert error={errorText(session.state.error)} onRetry={session.retry} />
      </main>
    );
  }
  if (session.state.status === 'signedOut') return path === SIGN_IN ? <SignInPage /> : null;
  if (session.state.status !== 'signedIn' || path === SIGN_IN) {
    return (
      <p className="centered muted" role="status">
        {t('app.loading')}
      </p>
    );
  }

  const isAdmin = session.state.user.role === 'admin';
  let page: ReactNode = null;
  for (const route of ROUTES) {
    const params = match(route.pattern, path);
    if (!params) continue;
    page =
      route.admin && !isAdmin ? (
        <Page title={t('app.adminOnly')}>
          <Link to="/">{t('app.backHome')}</Link>
        </Page>
      ) : (
        route.render(params)
      );
    break;
  }
  page ??= (
    <Page title={t('app.notFound')}>
      <p>{t('app.notFoundBody')}</p>
      <Link to="/">{t('app.backHome')}</Link>
    </Page>
  );
  return <Layout>{page}</Layout>;
}
