/**
 * Who is signed in. The session itself is the API's httpOnly cookie: the console only asks
 * who it belongs to (GET /users/me) and forgets the user when any request answers 401.
 */
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, ApiError, setUnauthorizedHandler, unwrap } from '../api/client';
import type { User } from '../api/types';

type State = { status: 'loading' } | { status: 'signedOut' } | { status: 'signedIn'; user: User } | { status: 'failed'; error: unknown };

interface Session {
  state: State;
  /** The signed-in user (pages under the signed-in layout only). */
  user: User;
  signIn: (username: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
  /** Reads the user again (the balance after a pull, a run, a credit). */
  refresh: () => Promise<void>;
  retry: () => void;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>({ status: 'loading' });
  const [attempt, setAttempt] = useState(0);

  const refresh = useCallback(async () => {
    try {
      const user = await unwrap(api.GET('/api/v1/users/me'));
      setState({ status: 'signedIn', user });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) setState({ status: 'signedOut' });
      else throw error;
    }
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => setState({ status: 'signedOut' }));
    let cancelled = false;
    unwrap(api.GET('/api/v1/users/me')).then(
      (user) => !cancelled && setState({ status: 'signedIn', user }),
      (error: unknown) => {
        if (cancelled) return;
        setState(error instanceof ApiError && error.status === 401 ? { status: 'signedOut' } : { status: 'failed', error });
      },
    );
    return () => {
      cancelled = true;
    };
  }, [attempt]);

  const signIn = useCallback(async (username: string, password: string) => {
    const { user } = await unwrap(api.POST('/api/v1/auth/login', { body: { username, password } }));
    setState({ status: 'signedIn', user });
  }, []);

  const signOut = useCallback(async () => {
    try {
      await unwrap(api.POST('/api/v1/auth/logout'));
    } catch (error) {
      // A session already gone is signed out; any other failure is shown, the session kept.
      if (!(error instanceof ApiError && error.status === 401)) throw error;
    }
    setState({ status: 'signedOut' });
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
      refresh,
      retry: () => {
        setState({ status: 'loading' });
        setAttempt((n) => n + 1);
      },
    }),
    [state, signIn, signOut, refresh],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside SessionProvider');
  return value;
}
