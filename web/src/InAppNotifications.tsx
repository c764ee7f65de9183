import { useEffect, useId, useRef, useState } from "react";
import { ApiError, InboxItem } from "./api";
import { useInbox, useNotiflow } from "./context";
import { timeAgo } from "./i18n";

export interface InAppNotificationsProps {
  /** Called with the notification when its "view issue" link is followed (default: the browser follows it). */
  onViewIssue?: (item: InboxItem) => void;
  className?: string;
}

function BellIcon() {
  return (
    <svg aria-hidden="true" focusable="false" width="20" height="20" viewBox="0 0 24 24" fill="none"
      stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
      <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
      <path d="M13.73 21a2 2 0 0 1-3.46 0" />
    </svg>
  );
}

/** A bell with the unread count and a dropdown of recent notifications, updated live. */
export function InAppNotifications({ onViewIssue, className }: InAppNotificationsProps) {
  const { t, locale, inbox: store } = useNotiflow();
  const inbox = useInbox();
  const [open, setOpen] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const panelId = useId();
  const titleId = useId();
  const root = useRef<HTMLDivElement>(null);
  const bell = useRef<HTMLButtonElement>(null);
  const panel = useRef<HTMLDivElement>(null);
  const sentinel = useRef<HTMLLIElement>(null);

  // Opened: the panel takes focus (a screen reader reads its title; Tab goes on to its buttons).
  // Escape closes it and gives focus back to the bell.
  useEffect(() => {
    if (open) panel.current?.focus();
  }, [open]);

  useEffect(() => {
    if (!open) return;
    const outside = (event: MouseEvent) => {
      if (root.current && !root.current.contains(event.target as Node)) setOpen(false);
    };
    const escape = (event: globalThis.KeyboardEvent) => {
      if (event.key === "Escape") {
        setOpen(false);
        bell.current?.focus();
      }
    };
    document.addEventListener("mousedown", outside);
    document.addEventListener("keydown", escape);
    return () => {
      document.removeEventListener("mousedown", outside);
      document.removeEventListener("keydown", escape);
    };
  }, [open]);

  // Engagement: the items the open dropdown shows are reported as seen (the store sends each id once, so
  // re-renders, a second opening or an item merged again send nothing new; a page loaded or an item streamed
  // in while open is reported then).
  const shownIds = open && inbox.loaded ? inbox.items.map((item) => item.id).join(" ") : "";
  useEffect(() => {
    if (shownIds) void store.reportSeen(shownIds.split(" "));
  }, [shownIds, store]);

  // Infinite scroll: the next page when the end of the list comes into view.
  const { nextCursor, loadMore } = inbox;
  useEffect(() => {
    if (!open || !nextCursor || !sentinel.current || typeof IntersectionObserver === "undefined") return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) void loadMore();
    });
    observer.observe(sentinel.current);
    return () => observer.disconnect();
  }, [open, nextCursor, loadMore]);

  const act = async (action: () => Promise<void>) => {
    try {
      setActionError(null);
      await action();
    } catch (error) {
      setActionError((error as ApiError).detail ?? String(error));
    }
  };

  const count = inbox.unreadCount;
  return (
    <div className={`nf-inbox ${className ?? ""}`} ref={root}>
      <button
        ref={bell}
        type="button"
        className="nf-bell"
        aria-label={t.bell(count)}
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((was) => !was)}
      >
        <BellIcon />
        {count > 0 && <span className="nf-badge" aria-hidden="true">{count > 99 ? "99+" : count}</span>}
      </button>
      {open && (
        <div id={panelId} ref={panel} tabIndex={-1} className="nf-panel" role="dialog" aria-labelledby={titleId}>
          <div className="nf-panel-head">
            <h2 id={titleId} className="nf-panel-title">{t.panelTitle}</h2>
            <button type="button" className="nf-link-button" disabled={count === 0}
              onClick={() => act(inbox.markAllRead)}>
              {t.markAllRead}
            </button>
          </div>
          {inbox.mode === "polling" && <p className="nf-note">{t.polling}</p>}
          {(actionError || inbox.error) && <p className="nf-error" role="alert">{actionError ?? inbox.error}</p>}
          {!inbox.loaded ? (
            <p className="nf-note">{t.loading}</p>
          ) : inbox.items.length === 0 ? (
            <p className="nf-note">{t.empty}</p>
          ) : (
            <ul className="nf-list">
              {inbox.items.map((item) => (
                <li key={item.id} className={`nf-item ${item.read_at ? "" : "nf-unread"}`} data-notification-id={item.id}>
                  {!item.read_at && <span className="nf-dot" role="img" aria-label={t.unread} />}
                  <div className="nf-item-main">
                    <p className="nf-item-title">{item.title}</p>
                    <p className="nf-item-meta">
                      {item.issue_id && <span className="nf-issue">{item.issue_id}</span>}
                      <time dateTime={item.created_at}>{timeAgo(locale, item.created_at)}</time>
                    </p>
                    <div className="nf-item-actions">
                      {item.link && (
                        <a href={item.link} className="nf-link" onClick={(event) => {
                          // CLICKED (and read), sent with keepalive: the browser may be leaving the page.
                          void act(() => inbox.click(item.id));
                          if (onViewIssue) {
                            event.preventDefault();
                            onViewIssue(item);
                          }
                        }} onAuxClick={(event) => {
                          if (event.button === 1) void act(() => inbox.click(item.id)); // opened in a new tab
                        }}>
                          {t.viewIssue}
                          {item.issue_id ? <span className="nf-visually-hidden"> {item.issue_id}</span> : null}
                        </a>
                      )}
                      {!item.read_at && (
                        <button type="button" className="nf-link-button" onClick={() => act(() => inbox.markRead(item.id))}>
                          {t.markRead}
                        </button>
                      )}
                      <button type="button" className="nf-link-button" onClick={() => act(() => inbox.archive(item.id))}>
                        {t.archive}
                      </button>
                    </div>
                  </div>
                </li>
              ))}
              {inbox.nextCursor && (
                <li ref={sentinel} className="nf-more">
                  <button type="button" className="nf-link-button" disabled={inbox.loadingMore}
                    onClick={() => void inbox.loadMore()}>
                    {inbox.loadingMore ? t.loading : t.loadMore}
                  </button>
                </li>
              )}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}
