/** Loading, polling and running actions, each ending in data or an error: never a spinner left behind. */
import { useCallback, useEffect, useRef, useState } from 'react';
import { isAbort } from '../api/client';
import { useErrorText } from '../i18n';

export interface Loaded<T> {
  data: T | undefined;
  /** The last failure's text, cleared by the next success. */
  error: string | undefined;
  /** True until the first answer (or failure) for the current key. */
  loading: boolean;
  reload: () => void;
}

/**
 * Loads with `load` whenever `key` changes, then again every `intervalMs` after each answer
 * (null: once). The request in flight is aborted when the key changes or the component goes.
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, key: string, intervalMs: number | null = null): Loaded<T> {
  const errorText = useErrorText();
  const loadRef = useRef(load);
  useEffect(() => {
    loadRef.current = load;
  });
  const [state, setState] = useState<{ key: string; data: T | undefined; error: string | undefined; done: boolean }>({
    key,
    data: undefined,
    error: undefined,
    done: false,
  });
  const [nonce, setNonce] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    let timer: number | undefined;
    const tick = async () => {
      try {
        const data = await loadRef.current(controller.signal);
        if (!controller.signal.aborted) setState({ key, data, error: undefined, done: true });
      } catch (error) {
        if (controller.signal.aborted || isAbort(error)) return;
        setState((s) => ({ key, data: s.key === key ? s.data : undefined, error: errorText(error), done: true }));
      }
      if (intervalMs !== null && !controller.signal.aborted) timer = window.setTimeout(() => void tick(), intervalMs);
    };
    void tick();
    return () => {
      controller.abort();
      window.clearTimeout(timer);
    };
  }, [key, intervalMs, nonce, errorText]);

  const reload = useCallback(() => setNonce((n) => n + 1), []);
  const current = state.key === key;
  return { data: current ? state.data : undefined, error: current ? state.error : undefined, loading: !current || !state.done, reload };
}

export interface Action {
  /** Runs `work` unless another run is in flight; its failure becomes `error`. */
  run: (work: () => Promise<void>) => Promise<void>;
  busy: boolean;
  error: string | undefined;
  setError: (error: string | undefined) => void;
}

/** A user's action (a button): busy while it runs, its error kept to show in an alert. */
export function useAction(): Action {
  const errorText = useErrorText();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const inFlight = useRef(false);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const run = useCallback(
    async (work: () => Promise<void>) => {
      if (inFlight.current) return;
      inFlight.current = true;
      setBusy(true);
      setError(undefined);
      try {
        await work();
      } catch (err) {
        if (mounted.current && !isAbort(err)) setError(errorText(err));
      } finally {
        inFlight.current = false;
        if (mounted.current) setBusy(false);
      }
    },
    [errorText],
  );
  return { run, busy, error, setError };
}
