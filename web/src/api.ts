// A small client for notiflow's HTTP API (/api/v1): bearer token, JSON, errors as ApiError.

export type TokenSource = { token?: string; getToken?: () => string | Promise<string> };

export interface FieldError {
  field: string;
  location: string;
  message: string;
}

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

export interface InboxItem {
  id: string;
  notification_type: string;
  issue_id: string | null;
  title: string;
  body: string;
  link: string | null;
  created_at: string;
  read_at: string | null;
  archived_at: string | null;
}

export interface InboxPage {
  items: InboxItem[];
  next_cursor: string | null;
  unread_count: number;
}

export type Channel = "EMAIL" | "IN_APP" | "SMS";
export type Frequency = "IMMEDIATE" | "HOURLY" | "DAILY";

export interface PreferenceState {
  notification_type: string;
  channel: string;
  enabled: boolean;
  frequency: Frequency;
  digest_hour: number | null;
  critical: boolean;
  locked_reason?: string | null;
  customized: boolean;
}

export interface QuietHours {
  start: string;
  end: string;
}

export interface NotificationSettingsData {
  user_id: string;
  timezone: string;
  locale: string;
  quiet_hours: QuietHours | null;
  preferences: PreferenceState[];
}

export interface PreferenceUpdate {
  notification_type: string;
  channel: string;
  enabled: boolean;
  frequency: Frequency;
  digest_hour: number | null;
}

export interface PreferencesUpdate {
  timezone?: string | null;
  locale?: string | null;
  quiet_hours?: QuietHours | null;
  preferences?: PreferenceUpdate[];
}

export class NotiflowApi {
  constructor(
    public apiUrl: string,
    private source: TokenSource,
  ) {
    this.apiUrl = apiUrl.replace(/\/+$/, "");
  }

  async token(): Promise<string> {
    if (this.source.getToken) return await this.source.getToken();
    return this.source.token ?? "";
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json", Authorization: `Bearer ${await this.token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(this.apiUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new ApiError(0, `notiflow is not reachable (${(error as Error).message})`);
    }
    const text = await response.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const data = (json ?? {}) as { detail?: unknown; errors?: FieldError[] };
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

  unreadCount(): Promise<{ unread_count: number }> {
    return this.request("GET", "/api/v1/notifications/inbox/unread-count");
  }

  markRead(id: string): Promise<InboxItem> {
    return this.request("POST", `/api/v1/notifications/inbox/${encodeURIComponent(id)}/read`);
  }

  archive(id: string): Promise<InboxItem> {
    return this.request("POST", `/api/v1/notifications/inbox/${encodeURIComponent(id)}/archive`);
  }

  readAll(): Promise<{ marked_read: number; unread_count: number }> {
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
}
