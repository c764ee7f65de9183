// A small client for notiflow's HTTP API (/api/v1): bearer token, JSON, errors as ApiError.
import type { components } from "./api-schema";

export type TokenSource = { token?: string; getToken?: () => string | Promise<string> };
/** A token source, or a React ref to one: read at each request, so a new token needs no new client. */
export type TokenSourceOrRef = TokenSource | { readonly current: TokenSource };

/** The API's bodies, generated from its OpenAPI schema (api-schema.ts: `make api-types`, never edited by hand). */
export type Schemas = components["schemas"];

export type FieldError = Schemas["FieldError"];

/** An answer other than 2xx: `detail` is the API's sentence a person can act on; `errors` names the fields. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public detail: string,
    public errors: FieldError[] = [],
  ) {
    super(detail);
    this.name = "ApiError";
  }

  /** The message for one field (`timezone`, `quiet_hours.start`…), if the API named it. */
  forField(field: string): string | undefined {
    const hit = this.errors.find((e) => e.field === field || e.field.startsWith(field + "."));
    return hit?.message;
  }
}

export type InboxItem = Schemas["InboxItem"];
export type InboxPage = Schemas["InboxPage"];
export type Channel = Schemas["Channel"];
export type Frequency = Schemas["Frequency"];
export type NotificationType = Schemas["NotificationType"];
export type PreferenceState = Schemas["PreferenceState"];
export type QuietHours = Schemas["QuietHours"];
export type NotificationSettingsData = Schemas["NotificationSettings"];
export type PreferenceUpdate = Schemas["PreferenceUpdate"];
export type PreferencesUpdate = Schemas["PreferencesUpdate"];
export type PushSubscriptionData = Schemas["PushSubscriptionOut"];

export class NotiflowApi {
  constructor(
    public apiUrl: string,
    private source: TokenSourceOrRef,
  ) {
    this.apiUrl = apiUrl.replace(/\/+$/, "");
  }

  async token(): Promise<string> {
    const source = "current" in this.source ? this.source.current : this.source;
    if (source.getToken) return await source.getToken();
    return source.token ?? "";
  }

  /** `keepalive`: the request outlives the page (a report sent while the browser navigates away). */
  async request<T>(method: string, path: string, body?: unknown, options: { keepalive?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json", Authorization: `Bearer ${await this.token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      const init: RequestInit = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
      if (options.keepalive) init.keepalive = true;
      response = await fetch(this.apiUrl + path, init);
    } catch (error) {
      throw new ApiError(0, `notiflow is not reachable (${(error as Error).message})`);
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const data = (json ?? {}) as Partial<Schemas["ValidationFailure"]>;
      const detail = typeof data.detail === "string" ? data.detail : `HTTP ${response.status}`;
      throw new ApiError(response.status, detail, Array.isArray(data.errors) ? data.errors : []);
    }
    return json as T;
  }

  inbox(cursor?: string | null, limit = 20): Promise<InboxPage> {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor) query.set("cursor", cursor);
    return this.request("GET", `/api/v1/notifications/inbox?${query}`);
  }

  unreadCount(): Promise<Schemas["UnreadCount"]> {
    return this.request("GET", "/api/v1/notifications/inbox/unread-count");
  }

  markRead(id: string): Promise<InboxItem> {
    return this.request("POST", `/api/v1/notifications/inbox/${encodeURIComponent(id)}/read`);
  }

  archive(id: string): Promise<InboxItem> {
    return this.request("POST", `/api/v1/notifications/inbox/${encodeURIComponent(id)}/archive`);
  }

  /** Engagement: the bell showed these notifications (SEEN; the API ignores ids that are not the caller's). */
  seen(ids: string[]): Promise<Schemas["SeenResult"]> {
    return this.request("POST", "/api/v1/notifications/inbox/seen", { ids }, { keepalive: true });
  }

  /** Engagement: "View issue" was followed (CLICKED, and the item is marked read). Survives the navigation. */
  click(id: string): Promise<Schemas["ClickResult"]> {
    return this.request("POST", `/api/v1/notifications/inbox/${encodeURIComponent(id)}/click`, undefined, { keepalive: true });
  }

  readAll(): Promise<Schemas["ReadAllResult"]> {
    return this.request("POST", "/api/v1/notifications/inbox/read-all");
  }

  async streamUrl(lastEventId: string | null): Promise<string> {
    const query = new URLSearchParams({ access_token: await this.token() });
    if (lastEventId) query.set("last_event_id", lastEventId);
    return `${this.apiUrl}/api/v1/notifications/inbox/stream?${query}`;
  }

  preferences(): Promise<NotificationSettingsData> {
    return this.request("GET", "/api/v1/notifications/preferences");
  }

  savePreferences(update: PreferencesUpdate): Promise<NotificationSettingsData> {
    return this.request("PUT", "/api/v1/notifications/preferences", update);
  }

  /** Web Push: the server's VAPID public key (404 when push is not configured there). */
  vapidPublicKey(): Promise<Schemas["VapidPublicKey"]> {
    return this.request("GET", "/api/v1/notifications/push/vapid-public-key");
  }

  pushSubscriptions(): Promise<PushSubscriptionData[]> {
    return this.request("GET", "/api/v1/notifications/push-subscriptions");
  }

  /** `subscription`: the browser's `PushSubscription.toJSON()`. */
  subscribePush(subscription: Schemas["PushSubscriptionIn"]): Promise<PushSubscriptionData> {
    return this.request("POST", "/api/v1/notifications/push-subscriptions", subscription);
  }

  unsubscribePush(id: string): Promise<void> {
    return this.request("DELETE", `/api/v1/notifications/push-subscriptions/${encodeURIComponent(id)}`);
  }
}
