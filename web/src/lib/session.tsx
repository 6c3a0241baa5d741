/**
 * Who is signed in. The session itself is the API's httpOnly cookie: the console only asks
 * who it belongs to (GET /users/me) and forgets the user when any request answers 401.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, ApiError, setUnauthorizedHandler, unwrap } from '../api/client';
import type { User } from '../api/types';

/** `signedOut.bySignOut`: the user signed out here (not a session that expired or was revoked). */
type State =
  { status: 'loading' } | { status: 'signedOut'; bySignOut?: boolean } | { status: 'signedIn'; user: User } | { status: 'failed'; error: unknown };

interface Session {
  state: State;
  /** The signed-in user (pages under the signed-in layout only). */
  user: User;
  signIn: (username: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
  retry: () => void;
}

const SessionContext = createContext<Session | null>(null);

/**
 * Whether this browser signed in and has not signed out since: a hint, never a credential (the
 * session is the httpOnly cookie). Without it the console shows the sign-in page without
 * asking the API first: a 401 is logged by the browser as a console error.
 */
const HINT_KEY = 'berth.signedIn';
const hint = {
  get: () => {
    try {
      return window.localStorage.getItem(HINT_KEY) === '1';
    } catch {
      return true; // Storage disabled: ask the API.
    }
  },
  set: (signedIn: boolean) => {
    try {
      if (signedIn) window.localStorage.setItem(HINT_KEY, '1');
      else window.localStorage.removeItem(HINT_KEY);
    } catch {
      // Storage disabled: the API is asked at every load.
    }
  },
};

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>(() => (hint.get() ? { status: 'loading' } : { status: 'signedOut' }));
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    setUnauthorizedHandler(() => {
      hint.set(false);
      setState({ status: 'signedOut' });
    });
    if (!hint.get()) return;
    let cancelled = false;
    unwrap(api.GET('/api/v1/users/me')).then(
      (user) => !cancelled && setState({ status: 'signedIn', user }),
      (error: unknown) => {
        if (cancelled) return;
        if (error instanceof ApiError && error.status === 401) {
          hint.set(false);
          setState({ status: 'signedOut' });
        } else setState({ status: 'failed', error });
      },
    );
    return () => {
      cancelled = true;
    };
  }, [attempt]);

  const signIn = useCallback(async (username: string, password: string) => {
    const { user } = await unwrap(api.POST('/api/v1/auth/login', { body: { username, password } }));
    hint.set(true);
    setState({ status: 'signedIn', user });
  }, []);

  const signOut = useCallback(async () => {
    try {
      await unwrap(api.POST('/api/v1/auth/logout'));
    } catch (error) {
      // A session already gone is signed out; any other failure is shown, the session kept.
      if (!(error instanceof ApiError && error.status === 401)) throw error;
    }
    hint.set(false);
    setState({ status: 'signedOut', bySignOut: true });
  }, []);

  const value = useMemo<Session>(
    () => ({
      state,
      get user(): User {
        if (state.status !== 'signedIn') throw new Error('no user is signed in');
        return state.user;
      },
      signIn,
      signOut,
      retry: () => {
        setState({ status: 'loading' });
        setAttempt((n) => n + 1);
      },
    }),
    [state, signIn, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}
