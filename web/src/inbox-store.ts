// The inbox of the signed-in person, shared by the bell and the hooks: one EventSource per provider.
//
// Real time over Server-Sent Events. Every event has an id (the item's position in the inbox); after a
// dropped connection the browser reconnects with Last-Event-ID and the API replays what was missed, once.
// Items are also merged by id, so a page read and a streamed event never show an item twice.
// If the stream is refused (EventSource closed), the store polls until it can reopen the stream.
//
// Engagement: the bell reports the items it showed (POST inbox/seen, once per item for the store's life) and
// "View issue" (POST inbox/{id}/click, which also marks the item read), with `keepalive` so that following the
// link does not cancel the report. Mark read, read-all and archive are recorded by their own routes.

import { ApiError, InboxItem, NotiflowApi } from "./api";

export type InboxMode = "connecting" | "live" | "polling";

export interface InboxState {
  items: InboxItem[];
  unreadCount: number;
  nextCursor: string | null;
  loaded: boolean;
  loadingMore: boolean;
  error: string | null;
  mode: InboxMode;
}

export interface InboxOptions {
  pageSize?: number;
  pollIntervalMs?: number;
  /** How long after a refused stream to try it again (polling meanwhile). */
  reopenAfterMs?: number;
  /** Tests replace EventSource; browsers' own is used otherwise. */
  EventSource?: typeof EventSource;
}

/** The most ids one seen report carries (the API's limit). */
const SEEN_BATCH = 200;

const INITIAL: InboxState = {
  items: [], unreadCount: 0, nextCursor: null, loaded: false, loadingMore: false, error: null, mode: "connecting",
};

function newestFirst(a: InboxItem, b: InboxItem): number {
  return b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id);
}

export class InboxStore {
  private state: InboxState = INITIAL;
  private listeners = new Set<() => void>();
  private source: EventSource | null = null;
  private lastEventId: string | null = null;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private reopenTimer: ReturnType<typeof setTimeout> | null = null;
  private started = false;
  private users = 0;
  /** Ids reported (or being reported) as seen: each once per store, i.e. per page session. */
  private seenIds = new Set<string>();
  private readonly options: Required<Omit<InboxOptions, "EventSource">> & { EventSource?: typeof EventSource };

  constructor(private api: NotiflowApi, options: InboxOptions = {}) {
    // `??`, not a spread: an option given as undefined keeps its default.
    this.options = {
      pageSize: options.pageSize ?? 20,
      pollIntervalMs: options.pollIntervalMs ?? 5000,
      reopenAfterMs: options.reopenAfterMs ?? 30000,
      EventSource: options.EventSource,
    };
  }

  getState = (): InboxState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    this.users += 1;
    if (!this.started) this.start();
    return () => {
      this.listeners.delete(listener);
      this.users -= 1;
      // Let React's strict-mode remount keep the same connection.
      setTimeout(() => {
        if (this.users === 0) this.stop();
      }, 0);
    };
  };

  private set(patch: Partial<InboxState>): void {
    this.state = { ...this.state, ...patch };
    this.listeners.forEach((listener) => listener());
  }

  private start(): void {
    this.started = true;
    void this.openStream();
    void this.refresh();
  }

  stop(): void {
    this.started = false;
    this.source?.close();
    this.source = null;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.pollTimer = this.reopenTimer = null;
  }

  /** Merge items (from a page or the stream) by id, newest first. */
  private merge(incoming: InboxItem[], replace = false): void {
    const byId = new Map(this.state.items.map((item) => [item.id, item]));
    for (const item of incoming) {
      if (item.archived_at) byId.delete(item.id);
      else byId.set(item.id, replace || !byId.has(item.id) ? item : { ...byId.get(item.id)!, ...item });
    }
    this.set({ items: [...byId.values()].sort(newestFirst) });
  }

  /** Re-read the first page and the count (on start, on every fresh stream connection, while polling). */
  async refresh(): Promise<void> {
    try {
      const page = await this.api.inbox(null, this.options.pageSize);
      this.merge(page.items, true);
      this.set({
        unreadCount: page.unread_count,
        nextCursor: this.state.loaded ? this.state.nextCursor : page.next_cursor,
        loaded: true,
        error: null,
      });
    } catch (error) {
      this.set({ error: (error as ApiError).detail ?? String(error), loaded: true });
    }
  }

  async loadMore(): Promise<void> {
    const cursor = this.state.nextCursor;
    if (!cursor || this.state.loadingMore) return;
    this.set({ loadingMore: true });
    try {
      const page = await this.api.inbox(cursor, this.options.pageSize);
      this.merge(page.items);
      this.set({ nextCursor: page.next_cursor, loadingMore: false, unreadCount: page.unread_count });
    } catch (error) {
      this.set({ loadingMore: false, error: (error as ApiError).detail ?? String(error) });
    }
  }

  async markRead(id: string): Promise<void> {
    const before = this.state.items.find((item) => item.id === id);
    const item = await this.api.markRead(id);
    this.merge([item], true);
    if (before && !before.read_at) this.set({ unreadCount: Math.max(0, this.state.unreadCount - 1) });
  }

  async archive(id: string): Promise<void> {
    const before = this.state.items.find((item) => item.id === id);
    await this.api.archive(id);
    this.set({
      items: this.state.items.filter((item) => item.id !== id),
      unreadCount: before && !before.read_at ? Math.max(0, this.state.unreadCount - 1) : this.state.unreadCount,
    });
  }

  /**
   * The bell showed these items: report those not reported yet (once per item). A failed report is
   * forgotten, so the next opening tries again; it is never shown to the person.
   */
  async reportSeen(ids: string[]): Promise<void> {
    const fresh = [...new Set(ids)].filter((id) => !this.seenIds.has(id));
    if (fresh.length === 0) return;
    fresh.forEach((id) => this.seenIds.add(id));
    for (let start = 0; start < fresh.length; start += SEEN_BATCH) {
      const batch = fresh.slice(start, start + SEEN_BATCH);
      try {
        await this.api.seen(batch);
      } catch {
        batch.forEach((id) => this.seenIds.delete(id));
      }
    }
  }

  /**
   * "View issue" was followed: report CLICKED (the API marks the item read too). The item shows read at once,
   * since the browser may be leaving the page; the request is sent with keepalive so that it arrives anyway.
   */
  async click(id: string): Promise<void> {
    const before = this.state.items.find((item) => item.id === id);
    if (before && !before.read_at) {
      this.merge([{ ...before, read_at: new Date().toISOString() }], true);
      this.set({ unreadCount: Math.max(0, this.state.unreadCount - 1) });
    }
    try {
      const result = await this.api.click(id);
      const current = this.state.items.find((item) => item.id === id);
      if (current && result.read_at) this.merge([{ ...current, read_at: result.read_at }], true);
    } catch (error) {
      if (before && !before.read_at) void this.refresh(); // not recorded: show the API's state again
      throw error;
    }
  }

  async markAllRead(): Promise<void> {
    const result = await this.api.readAll();
    const now = new Date().toISOString();
    this.set({
      items: this.state.items.map((item) => (item.read_at ? item : { ...item, read_at: now })),
      unreadCount: result.unread_count,
    });
  }

  private async openStream(): Promise<void> {
    const EventSourceClass = this.options.EventSource ?? (typeof EventSource !== "undefined" ? EventSource : undefined);
    if (!EventSourceClass) {
      this.startPolling();
      return;
    }
    let url: string;
    try {
      url = await this.api.streamUrl(this.lastEventId);
    } catch {
      this.startPolling();
      return;
    }
    if (!this.started) return;
    const source = new EventSourceClass(url);
    this.source = source;
    source.addEventListener("unread_count", (event) => {
      const message = event as MessageEvent;
      const resumed = this.lastEventId !== null;
      if (message.lastEventId) this.lastEventId = message.lastEventId;
      this.stopPolling();
      this.set({ unreadCount: JSON.parse(message.data).unread_count, mode: "live" });
      // A fresh connection: what arrived before it opened is in the first page, not in the stream.
      if (!resumed) void this.refresh();
    });
    source.addEventListener("notification", (event) => {
      const message = event as MessageEvent;
      if (message.lastEventId) this.lastEventId = message.lastEventId;
      const item = JSON.parse(message.data) as InboxItem;
      const known = this.state.items.some((existing) => existing.id === item.id);
      this.merge([item]);
      if (!known && !item.read_at) this.set({ unreadCount: this.state.unreadCount + 1 });
    });
    source.onerror = () => {
      // CONNECTING: the browser retries by itself (with Last-Event-ID). CLOSED: the stream was refused.
      if (source.readyState === 2 /* CLOSED */) {
        source.close();
        if (this.source === source) this.source = null;
        this.startPolling();
        if (this.reopenTimer) clearTimeout(this.reopenTimer);
        this.reopenTimer = setTimeout(() => {
          this.reopenTimer = null;
          if (this.started) void this.openStream();
        }, this.options.reopenAfterMs);
      } else if (this.state.mode === "live") {
        this.set({ mode: "connecting" });
      }
    };
  }

  private startPolling(): void {
    if (this.pollTimer || !this.started) return;
    this.set({ mode: "polling" });
    this.pollTimer = setInterval(() => void this.refresh(), this.options.pollIntervalMs);
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}
