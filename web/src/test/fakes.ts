// A fake notiflow API (fetch) and EventSource, so components are tested without a server.
import { vi } from "vitest";
import type { InboxItem, NotificationSettingsData, NotificationType, PreferenceState } from "../api";

export class FakeEventSource {
  static instances: FakeEventSource[] = [];
  readyState = 0;
  onerror: ((event: Event) => void) | null = null;
  private listeners = new Map<string, ((event: MessageEvent) => void)[]>();

  constructor(public url: string) {
    FakeEventSource.instances.push(this);
  }

  addEventListener(type: string, listener: (event: MessageEvent) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close() {
    this.readyState = 2;
  }

  emit(type: string, data: unknown, lastEventId = "") {
    this.readyState = 1;
    const event = new MessageEvent(type, { data: JSON.stringify(data), lastEventId });
    (this.listeners.get(type) ?? []).forEach((listener) => listener(event));
  }

  refuse() {
    this.readyState = 2;
    this.onerror?.(new Event("error"));
  }

  static latest(): FakeEventSource {
    return FakeEventSource.instances[FakeEventSource.instances.length - 1];
  }
}

export function item(n: number, fields: Partial<InboxItem> = {}): InboxItem {
  return {
    id: `00000000-0000-0000-0000-${String(n).padStart(12, "0")}`,
    notification_type: "ISSUE_ASSIGNED",
    issue_id: `ISS-${n}`,
    title: `Issue ${n} is yours`,
    body: "body",
    link: `http://tracker.test/issues/ISS-${n}`,
    created_at: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
    read_at: null,
    archived_at: null,
    ...fields,
  };
}

const TYPES: NotificationType[] = [
  "ISSUE_CREATED", "ISSUE_ASSIGNED", "ISSUE_STATUS_CHANGED", "ISSUE_RESOLVED", "ISSUE_COMMENT_ADDED", "ISSUE_REOPENED",
  "HIGH_PRIORITY_ISSUE", "AUTO_ISSUE_DETECTED", "ISSUE_OVERDUE", "DAILY_ISSUE_SUMMARY", "WEEKLY_ISSUE_REPORT",
  "SYSTEM_ERROR_SPIKE",
];
const CRITICAL = new Set(["AUTO_ISSUE_DETECTED", "SYSTEM_ERROR_SPIKE"]);

export function settings(): NotificationSettingsData {
  const preferences: PreferenceState[] = TYPES.flatMap((type) =>
    (["EMAIL", "IN_APP"] as const).map((channel) => ({
      notification_type: type, channel, enabled: true, frequency: "IMMEDIATE" as const, digest_hour: null,
      critical: CRITICAL.has(type), customized: false,
      locked_reason: CRITICAL.has(type) ? `${type} is critical (it reports production being down) and is always sent immediately: it cannot be turned off or put in a digest` : null,
    })));
  return { user_id: "u-1", timezone: "Indian/Antananarivo", locale: "en", quiet_hours: null, preferences };
}

/** A request's JSON body: a test says what it expects (`body as PreferencesUpdate`). */
type Body = unknown;
type Handler = (body: Body, url: URL) => { status?: number; json: unknown };

/** Routes "METHOD /path" → handler; records every call. */
export function fakeFetch(routes: Record<string, Handler>) {
  const calls: { method: string; path: string; query: URLSearchParams; body: Body; auth: string | null; keepalive: boolean }[] = [];
  const fetchMock = vi.fn(async (input: string, init: RequestInit = {}) => {
    const url = new URL(input, "http://notiflow.test");
    const method = init.method ?? "GET";
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method, path: url.pathname, query: url.searchParams, body, auth: (init.headers as Record<string, string>)?.Authorization ?? null, keepalive: init.keepalive === true });
    const handler = routes[`${method} ${url.pathname}`];
    const answer = handler ? handler(body, url) : { status: 404, json: { detail: `no route ${method} ${url.pathname}` } };
    const status = answer.status ?? 200;
    if (status === 204) return new Response(null, { status }); // a body with a 204 is a TypeError
    return new Response(JSON.stringify(answer.json), { status, headers: { "Content-Type": "application/json" } });
  });
  vi.stubGlobal("fetch", fetchMock);
  return { calls, fetchMock };
}
