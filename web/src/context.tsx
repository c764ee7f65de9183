import { createContext, ReactNode, useContext, useEffect, useLayoutEffect, useMemo, useRef, useSyncExternalStore } from "react";
import { NotiflowApi, TokenSource } from "./api";
import { Locale, normalizeLocale, strings, Strings } from "./i18n";
import { InboxOptions, InboxState, InboxStore } from "./inbox-store";

interface NotiflowContextValue {
  api: NotiflowApi;
  inbox: InboxStore;
  locale: Locale;
  t: Strings;
}

const NotiflowContext = createContext<NotiflowContextValue | null>(null);

export interface NotiflowProviderProps {
  /** Where notiflow's API is, e.g. "https://notify.example.mg" ("" = this page's origin). */
  apiUrl: string;
  /** A bearer token for the signed-in person… */
  token?: string;
  /** …or a function returning one (called before each request, so it may refresh it). */
  getToken?: () => string | Promise<string>;
  /** "en" or "fr" (other locales fall back to English). */
  locale?: string;
  inboxOptions?: InboxOptions;
  children: ReactNode;
}

export function NotiflowProvider({ apiUrl, token, getToken, locale, inboxOptions, children }: NotiflowProviderProps) {
  const tokens = useRef<TokenSource>({ token, getToken });
  useLayoutEffect(() => {
    tokens.current = { token, getToken };
  }, [token, getToken]);
  // A new token keeps the store (the API reads `tokens` at each request); a new API URL, locale or inbox option
  // makes a new one. The options are compared one by one, so an inline `inboxOptions={{…}}` keeps the store too.
  const { pageSize, pollIntervalMs, reopenAfterMs, EventSource: EventSourceClass } = inboxOptions ?? {};
  const value = useMemo(() => {
    const api = new NotiflowApi(apiUrl, tokens);
    const lang = normalizeLocale(locale);
    const options: InboxOptions = { pageSize, pollIntervalMs, reopenAfterMs, EventSource: EventSourceClass };
    return { api, inbox: new InboxStore(api, options), locale: lang, t: strings(lang) };
  }, [apiUrl, locale, pageSize, pollIntervalMs, reopenAfterMs, EventSourceClass]);
  useEffect(() => () => value.inbox.stop(), [value]);
  return <NotiflowContext.Provider value={value}>{children}</NotiflowContext.Provider>;
}

export function useNotiflow(): NotiflowContextValue {
  const value = useContext(NotiflowContext);
  if (!value) throw new Error("notiflow components and hooks must be inside <NotiflowProvider>");
  return value;
}

export interface UseInbox extends InboxState {
  loadMore: () => Promise<void>;
  markRead: (id: string) => Promise<void>;
  markAllRead: () => Promise<void>;
  archive: (id: string) => Promise<void>;
  /** Report items shown to the person (SEEN), each once per provider. */
  reportSeen: (ids: string[]) => Promise<void>;
  /** Report "View issue" (CLICKED; the API marks it read), surviving the navigation that follows. */
  click: (id: string) => Promise<void>;
  refresh: () => Promise<void>;
}

/** The person's inbox: items (newest first), unread count, live updates, and the actions. */
export function useInbox(): UseInbox {
  const { inbox } = useNotiflow();
  const state = useSyncExternalStore(inbox.subscribe, inbox.getState, inbox.getState);
  return useMemo(
    () => ({
      ...state,
      loadMore: () => inbox.loadMore(),
      markRead: (id: string) => inbox.markRead(id),
      markAllRead: () => inbox.markAllRead(),
      archive: (id: string) => inbox.archive(id),
      reportSeen: (ids: string[]) => inbox.reportSeen(ids),
      click: (id: string) => inbox.click(id),
      refresh: () => inbox.refresh(),
    }),
    [state, inbox],
  );
}

/** Only the unread count (for a badge of your own), live. */
export function useUnreadCount(): number {
  const { inbox } = useNotiflow();
  return useSyncExternalStore(inbox.subscribe, () => inbox.getState().unreadCount, () => inbox.getState().unreadCount);
}
