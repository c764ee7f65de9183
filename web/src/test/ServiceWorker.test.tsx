// notiflow-sw.js run as the browser would run it, in a fake service worker global (`self`): what it shows on a
// push, and what a click on the notification does.
import { describe, expect, it, vi } from "vitest";
import source from "../notiflow-sw.js?raw";

type Handler = (event: Record<string, unknown>) => void;

function loadWorker(windows: { url: string; focus?: () => Promise<unknown> }[] = []) {
  const handlers = new Map<string, Handler>();
  const posted: unknown[] = [];
  const clientsList = windows.map((w) => ({ ...w, postMessage: (message: unknown) => posted.push(message) }));
  const self = {
    addEventListener: (type: string, handler: Handler) => handlers.set(type, handler),
    registration: { showNotification: vi.fn(async () => undefined) },
    clients: {
      matchAll: vi.fn(async () => clientsList),
      openWindow: vi.fn(async () => null),
    },
  };
  const fetchMock = vi.fn(async () => new Response(null, { status: 302 }));
  new Function("self", "fetch", source)(self, fetchMock);
  /** Dispatches an event; resolves once what it handed to waitUntil() settled. */
  const dispatch = async (type: string, event: Record<string, unknown>) => {
    const pending: Promise<unknown>[] = [];
    handlers.get(type)!({ ...event, waitUntil: (promise: Promise<unknown>) => pending.push(promise) });
    await Promise.all(pending);
  };
  return { self, dispatch, posted, fetchMock };
}

const TRACKED = "http://notiflow.test/r/AbC123";

describe("notiflow-sw.js", () => {
  it("shows a push message's title and body, keeping the link, issue and notification id", async () => {
    const { self, dispatch } = loadWorker();
    const payload = { title: "ISS-7 is yours", body: "Printer on fire (ISS-7)", issue_id: "ISS-7", link: TRACKED, notification_id: "n-1", type: "ISSUE_ASSIGNED" };
    await dispatch("push", { data: { json: () => payload, text: () => JSON.stringify(payload) } });
    expect(self.registration.showNotification).toHaveBeenCalledWith("ISS-7 is yours", {
      body: "Printer on fire (ISS-7)", tag: "ISS-7", data: { link: TRACKED, issue_id: "ISS-7", notification_id: "n-1" },
    });
  });

  it("shows a push that is not JSON as its text", async () => {
    const { self, dispatch } = loadWorker();
    await dispatch("push", { data: { json: () => { throw new SyntaxError("not JSON"); }, text: () => "hello" } });
    expect(self.registration.showNotification).toHaveBeenCalledWith("notiflow", expect.objectContaining({ body: "hello" }));
  });

  it("on a click, closes the notification, opens the issue link (which records the click) and tells the pages", async () => {
    const { self, dispatch, posted, fetchMock } = loadWorker([{ url: "http://tracker.test/issues" }]);
    const close = vi.fn();
    await dispatch("notificationclick", { notification: { close, data: { link: TRACKED, issue_id: "ISS-7", notification_id: "n-1" } } });
    expect(close).toHaveBeenCalled();
    expect(self.clients.openWindow).toHaveBeenCalledExactlyOnceWith(TRACKED);
    expect(posted).toEqual([{ type: "notiflow:notificationclick", notification_id: "n-1", issue_id: "ISS-7", link: TRACKED }]);
    // The tracked link is the report (GET /r/{code} records CLICKED as it redirects): never fetched as well.
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it("focuses a tab already on the link instead of opening another", async () => {
    const focus = vi.fn(async () => undefined);
    const link = "http://tracker.test/issues/ISS-7";
    const { self, dispatch } = loadWorker([{ url: link, focus }]);
    await dispatch("notificationclick", { notification: { close: vi.fn(), data: { link, issue_id: "ISS-7", notification_id: "n-1" } } });
    expect(focus).toHaveBeenCalled();
    expect(self.clients.openWindow).not.toHaveBeenCalled();
  });

  it("opens nothing for a notification without a link", async () => {
    const { self, dispatch } = loadWorker();
    await dispatch("notificationclick", { notification: { close: vi.fn(), data: null } });
    expect(self.clients.openWindow).not.toHaveBeenCalled();
  });
});
