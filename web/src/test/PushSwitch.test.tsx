// "Notifications on this device" in <NotificationSettings />: the Push API and the service worker container
// faked at the browser boundary (navigator.serviceWorker, PushManager, Notification), the API with fetch.
import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { NotificationSettingsData } from "../api";
import { NotificationSettings, NotiflowProvider } from "../index";
import { fakeFetch, settings } from "./fakes";

const PREFS = "/api/v1/notifications/preferences";
const SUBS = "/api/v1/notifications/push-subscriptions";
const VAPID = "/api/v1/notifications/push/vapid-public-key";
const ENDPOINT = "https://push.example.test/send/abc";
const KEYS = { p256dh: "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U", auth: "tBHItJI5svbpez7KI4CCXg" };
const PUBLIC_KEY = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM";

class FakeSubscription {
  endpoint = ENDPOINT;
  unsubscribe = vi.fn(async () => {
    browser.subscription = null;
    return true;
  });
  toJSON() {
    return { endpoint: this.endpoint, expirationTime: null, keys: KEYS };
  }
}

/** The browser: permission, one registration of notiflow-sw.js, its PushManager. */
const browser = {
  permission: "default" as NotificationPermission,
  answer: "granted" as NotificationPermission,
  subscription: null as FakeSubscription | null,
  registered: [] as string[],
  subscribeOptions: [] as PushSubscriptionOptionsInit[],
};

function fakeBrowser(fields: Partial<typeof browser> = {}) {
  Object.assign(browser, { permission: "default", answer: "granted", subscription: null, registered: [], subscribeOptions: [] }, fields);
  const pushManager = {
    getSubscription: vi.fn(async () => browser.subscription),
    subscribe: vi.fn(async (options: PushSubscriptionOptionsInit) => {
      browser.subscribeOptions.push(options);
      browser.subscription = new FakeSubscription();
      return browser.subscription;
    }),
  };
  const registration = { pushManager };
  const container = {
    register: vi.fn(async (url: string) => {
      browser.registered.push(url);
      return registration;
    }),
    getRegistration: vi.fn(async () => (browser.registered.length ? registration : undefined)),
    ready: Promise.resolve(registration),
  };
  Object.defineProperty(navigator, "serviceWorker", { value: container, configurable: true });
  vi.stubGlobal("PushManager", class {});
  vi.stubGlobal("Notification", {
    get permission() {
      return browser.permission;
    },
    requestPermission: vi.fn(async () => (browser.permission = browser.answer)),
  });
  return { pushManager, container };
}

/** The API: preferences (PUSH offered once a subscription exists), the VAPID key, subscriptions. */
function fakeApi() {
  const subscriptions: { id: string; kind: "WEB"; endpoint: string; user_agent: null; created_at: string; last_success_at: null }[] = [];
  const withPush = (): NotificationSettingsData => {
    const stored = settings();
    if (subscriptions.length) {
      for (const type of new Set(stored.preferences.map((p) => p.notification_type))) {
        const first = stored.preferences.find((p) => p.notification_type === type)!;
        stored.preferences.push({ ...first, channel: "PUSH", enabled: false, customized: false });
      }
    }
    return stored;
  };
  const fake = fakeFetch({
    [`GET ${PREFS}`]: () => ({ json: withPush() }),
    [`GET ${VAPID}`]: () => ({ json: { public_key: PUBLIC_KEY } }),
    [`GET ${SUBS}`]: () => ({ json: subscriptions }),
    [`POST ${SUBS}`]: (body) => {
      const row = { id: "00000000-0000-0000-0000-0000000000a1", kind: "WEB" as const, endpoint: (body as { endpoint: string }).endpoint, user_agent: null, created_at: "2026-01-01T00:00:00Z", last_success_at: null };
      subscriptions.push(row);
      return { status: 201, json: row };
    },
    [`DELETE ${SUBS}/00000000-0000-0000-0000-0000000000a1`]: () => {
      subscriptions.splice(0);
      return { status: 204, json: null };
    },
  });
  return { ...fake, subscriptions };
}

function renderSettings(locale = "en") {
  return render(
    <NotiflowProvider apiUrl="" token="tok" locale={locale}>
      <NotificationSettings />
    </NotiflowProvider>,
  );
}

const device = () => screen.findByRole("switch", { name: "Notifications on this device" });

afterEach(() => {
  vi.unstubAllGlobals();
  Reflect.deleteProperty(navigator, "serviceWorker");
});

describe("Notifications on this device", () => {
  it("is off, then subscribes with the server's VAPID key, registers the subscription and offers the PUSH column", async () => {
    const { pushManager, container } = fakeBrowser();
    const { calls } = fakeApi();
    const user = userEvent.setup();
    renderSettings();
    const toggle = await device();
    expect(toggle).not.toBeChecked();
    expect(toggle).toBeEnabled();
    expect(screen.queryByRole("columnheader", { name: "Push" })).toBeNull();

    await user.click(toggle);
    await waitFor(() => expect(toggle).toBeChecked());
    expect(container.register).toHaveBeenCalledWith("/notiflow-sw.js");
    expect(pushManager.subscribe).toHaveBeenCalledTimes(1);
    const options = browser.subscribeOptions[0];
    expect(options.userVisibleOnly).toBe(true);
    expect((options.applicationServerKey as Uint8Array).length).toBe(65); // the decoded P-256 point
    expect((options.applicationServerKey as Uint8Array)[0]).toBe(4);
    const post = calls.find((c) => c.method === "POST" && c.path === SUBS)!;
    expect(post.body).toEqual({ endpoint: ENDPOINT, expirationTime: null, keys: KEYS });
    expect(post.auth).toBe("Bearer tok");
    expect(await screen.findByRole("columnheader", { name: "Push" })).toBeInTheDocument();
    expect(screen.getByRole("checkbox", { name: "Issue assigned — Push" })).not.toBeChecked();
  });

  it("is on for a subscription the server knows, and unsubscribing DELETEs it and ends the browser's", async () => {
    fakeBrowser({ permission: "granted", registered: ["/notiflow-sw.js"] });
    browser.subscription = new FakeSubscription();
    const subscription = browser.subscription;
    const { calls, subscriptions } = fakeApi();
    subscriptions.push({ id: "00000000-0000-0000-0000-0000000000a1", kind: "WEB", endpoint: ENDPOINT, user_agent: null, created_at: "2026-01-01T00:00:00Z", last_success_at: null });
    const user = userEvent.setup();
    renderSettings();
    const toggle = await device();
    await waitFor(() => expect(toggle).toBeChecked());
    expect(await screen.findByRole("columnheader", { name: "Push" })).toBeInTheDocument();

    await user.click(toggle);
    await waitFor(() => expect(toggle).not.toBeChecked());
    expect(calls.some((c) => c.method === "DELETE" && c.path === `${SUBS}/00000000-0000-0000-0000-0000000000a1`)).toBe(true);
    expect(subscription.unsubscribe).toHaveBeenCalled();
    await waitFor(() => expect(screen.queryByRole("columnheader", { name: "Push" })).toBeNull());
  });

  it("is off when this browser's subscription is not the server's", async () => {
    fakeBrowser({ permission: "granted", registered: ["/notiflow-sw.js"] });
    browser.subscription = new FakeSubscription();
    fakeApi();
    renderSettings();
    const toggle = await device();
    await waitFor(() => expect(vi.mocked(navigator.serviceWorker.getRegistration)).toHaveBeenCalled());
    expect(toggle).not.toBeChecked();
    expect(toggle).toBeEnabled();
  });

  it("is disabled, saying why, where notifications are blocked", async () => {
    fakeBrowser({ permission: "denied" });
    fakeApi();
    renderSettings();
    const toggle = await device();
    await waitFor(() => expect(toggle).toBeDisabled());
    expect(toggle).toHaveAccessibleDescription(/blocked for this site/);
  });

  it("turns to denied when the person refuses the permission, subscribing nothing", async () => {
    const { pushManager } = fakeBrowser({ answer: "denied" });
    const { calls } = fakeApi();
    const user = userEvent.setup();
    renderSettings();
    const toggle = await device();
    await user.click(toggle);
    await waitFor(() => expect(toggle).toBeDisabled());
    expect(toggle).not.toBeChecked();
    expect(pushManager.subscribe).not.toHaveBeenCalled();
    expect(calls.some((c) => c.method === "POST" && c.path === SUBS)).toBe(false);
  });

  it("is disabled where the browser has no Push API", async () => {
    fakeApi();
    renderSettings();
    const toggle = await device();
    expect(toggle).toBeDisabled();
    expect(toggle).toHaveAccessibleDescription("This browser cannot receive push notifications.");
  });

  it("shows the server's refusal (push not configured) and stays off", async () => {
    fakeBrowser();
    fakeFetch({
      [`GET ${PREFS}`]: () => ({ json: settings() }),
      [`GET ${SUBS}`]: () => ({ json: [] }),
      [`GET ${VAPID}`]: () => ({ status: 404, json: { detail: "Web Push is not configured on this server (NOTIFLOW_VAPID_PRIVATE_KEY is not set)" } }),
    });
    const user = userEvent.setup();
    renderSettings();
    const toggle = await device();
    await user.click(toggle);
    expect(await screen.findByRole("alert")).toHaveTextContent("Web Push is not configured on this server");
    expect(toggle).not.toBeChecked();
  });

  it("is named in French", async () => {
    fakeApi();
    renderSettings("fr");
    expect(await screen.findByRole("switch", { name: "Notifications sur cet appareil" })).toBeDisabled();
  });
});
