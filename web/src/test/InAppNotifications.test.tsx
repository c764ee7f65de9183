import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { InboxItem } from "../api";
import { InAppNotifications, NotiflowProvider } from "../index";
import { FakeEventSource, fakeFetch, item } from "./fakes";

const INBOX = "/api/v1/notifications/inbox";

function renderBell(locale = "en", options = {}, onViewIssue?: (item: InboxItem) => void) {
  return render(
    <NotiflowProvider apiUrl="http://notiflow.test" token="tok" locale={locale}
      inboxOptions={{ EventSource: FakeEventSource as unknown as typeof EventSource, pollIntervalMs: 50, ...options }}>
      <InAppNotifications onViewIssue={onViewIssue} />
    </NotiflowProvider>,
  );
}

beforeEach(() => {
  FakeEventSource.instances = [];
});
afterEach(() => vi.unstubAllGlobals());

describe("the bell", () => {
  it("is a button named with the unread count, in English and in French", async () => {
    fakeFetch({ [`GET ${INBOX}`]: () => ({ json: { items: [item(1), item(2)], next_cursor: null, unread_count: 2 } }) });
    const { unmount } = renderBell("en");
    expect(await screen.findByRole("button", { name: "Notifications, 2 unread" })).toBeInTheDocument();
    unmount();
    renderBell("fr");
    expect(await screen.findByRole("button", { name: "Notifications, 2 non lues" })).toBeInTheDocument();
  });

  it("counts up when the stream brings a notification, once per item, and opens the stream with the token", async () => {
    fakeFetch({ [`GET ${INBOX}`]: () => ({ json: { items: [], next_cursor: null, unread_count: 0 } }) });
    renderBell();
    await screen.findByRole("button", { name: "Notifications, 0 unread" });
    const stream = FakeEventSource.latest();
    expect(stream.url).toContain("/inbox/stream?access_token=tok");
    act(() => stream.emit("unread_count", { unread_count: 0 }, "pos-0"));
    act(() => stream.emit("notification", item(7), "pos-7"));
    act(() => stream.emit("notification", item(7), "pos-7"));
    expect(await screen.findByRole("button", { name: "Notifications, 1 unread" })).toBeInTheDocument();
  });

  it("falls back to polling when the stream is refused", async () => {
    let unread = 0;
    fakeFetch({ [`GET ${INBOX}`]: () => ({ json: { items: [], next_cursor: null, unread_count: unread } }) });
    renderBell();
    await screen.findByRole("button", { name: "Notifications, 0 unread" });
    act(() => FakeEventSource.latest().refuse());
    unread = 3;
    expect(await screen.findByRole("button", { name: "Notifications, 3 unread" })).toBeInTheDocument();
  });
});

describe("the dropdown", () => {
  it("lists title and issue id, marks one read, marks all read, archives", async () => {
    const { calls } = fakeFetch({
      [`GET ${INBOX}`]: () => ({ json: { items: [item(2), item(1)], next_cursor: null, unread_count: 2 } }),
      [`POST ${INBOX}/${item(2).id}/read`]: () => ({ json: item(2, { read_at: new Date().toISOString() }) }),
      [`POST ${INBOX}/${item(1).id}/archive`]: () => ({ json: item(1, { archived_at: new Date().toISOString() }) }),
      [`POST ${INBOX}/read-all`]: () => ({ json: { marked_read: 1, unread_count: 0 } }),
    });
    const user = userEvent.setup();
    renderBell();
    await user.click(await screen.findByRole("button", { name: "Notifications, 2 unread" }));
    const dialog = screen.getByRole("dialog", { name: "Notifications" });
    const entries = within(dialog).getAllByRole("listitem");
    expect(entries[0]).toHaveTextContent("Issue 2 is yours");
    expect(entries[0]).toHaveTextContent("ISS-2");
    expect(within(entries[0]).getByRole("link", { name: /View issue/ })).toHaveAttribute("href", "http://tracker.test/issues/ISS-2");

    await user.click(within(entries[0]).getByRole("button", { name: "Mark as read" }));
    await screen.findByRole("button", { name: "Notifications, 1 unread" });
    expect(within(entries[0]).queryByRole("button", { name: "Mark as read" })).toBeNull();

    await user.click(within(entries[1]).getByRole("button", { name: "Archive" }));
    await waitFor(() => expect(within(dialog).queryByText("Issue 1 is yours")).toBeNull());
    await screen.findByRole("button", { name: "Notifications, 0 unread" });
    expect(calls.map((c) => `${c.method} ${c.path}`)).toContain(`POST ${INBOX}/${item(1).id}/archive`);
    expect(calls.every((c) => c.auth === "Bearer tok")).toBe(true);
  });

  it("marks all read in French and closes on Escape, back on the bell", async () => {
    fakeFetch({
      [`GET ${INBOX}`]: () => ({ json: { items: [item(1), item(2)], next_cursor: null, unread_count: 2 } }),
      [`POST ${INBOX}/read-all`]: () => ({ json: { marked_read: 2, unread_count: 0 } }),
    });
    const user = userEvent.setup();
    renderBell("fr");
    const bell = await screen.findByRole("button", { name: "Notifications, 2 non lues" });
    await user.click(bell);
    expect(screen.getAllByRole("button", { name: "Marquer comme lu" })).toHaveLength(2);
    await user.click(screen.getByRole("button", { name: "Tout marquer comme lu" }));
    await screen.findByRole("button", { name: "Notifications, 0 non lues" });
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(bell).toHaveFocus();
  });

  it("takes focus when opened from the keyboard, and gives it back to the bell on Escape", async () => {
    fakeFetch({ [`GET ${INBOX}`]: () => ({ json: { items: [item(1)], next_cursor: null, unread_count: 1 } }) });
    const user = userEvent.setup();
    renderBell();
    const bell = await screen.findByRole("button", { name: "Notifications, 1 unread" });
    await user.tab();
    expect(bell).toHaveFocus();
    await user.keyboard("{Enter}");

    const dialog = screen.getByRole("dialog", { name: "Notifications" });
    expect(dialog).toHaveFocus();
    expect(bell).toHaveAttribute("aria-expanded", "true");
    await user.tab();
    expect(within(dialog).getByRole("button", { name: "Mark all as read" })).toHaveFocus();

    await user.keyboard("{Escape}");
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(bell).toHaveAttribute("aria-expanded", "false");
    expect(bell).toHaveFocus();

    // Opened again with a click: the panel has focus again.
    await user.click(bell);
    expect(screen.getByRole("dialog", { name: "Notifications" })).toHaveFocus();
  });

  it("loads the next page over the cursor API", async () => {
    const { calls } = fakeFetch({
      [`GET ${INBOX}`]: (_body, url) => url.searchParams.get("cursor") === "c2"
        ? { json: { items: [item(1)], next_cursor: null, unread_count: 3 } }
        : { json: { items: [item(3), item(2)], next_cursor: "c2", unread_count: 3 } },
    });
    const user = userEvent.setup();
    renderBell();
    await user.click(await screen.findByRole("button", { name: "Notifications, 3 unread" }));
    await user.click(screen.getByRole("button", { name: "Load more" }));
    expect(await screen.findByText("Issue 1 is yours")).toBeInTheDocument();
    expect(calls.some((c) => c.path === INBOX)).toBe(true);
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();
  });
});

describe("engagement reports", () => {
  const reports = (calls: ReturnType<typeof fakeFetch>["calls"], path: string) =>
    calls.filter((c) => c.method === "POST" && c.path === path);

  it("reports the shown items as seen once when the dropdown opens, not again on a second opening", async () => {
    const { calls } = fakeFetch({
      [`GET ${INBOX}`]: () => ({ json: { items: [item(2), item(1)], next_cursor: null, unread_count: 2 } }),
      [`POST ${INBOX}/seen`]: (body) => ({ json: { recorded: (body as { ids: string[] }).ids.length } }),
    });
    const user = userEvent.setup();
    renderBell();
    const bell = await screen.findByRole("button", { name: "Notifications, 2 unread" });
    expect(reports(calls, `${INBOX}/seen`)).toHaveLength(0); // nothing shown yet: the dropdown is closed

    await user.click(bell);
    await waitFor(() => expect(reports(calls, `${INBOX}/seen`)).toHaveLength(1));
    const [seen] = reports(calls, `${INBOX}/seen`);
    expect(seen.body).toEqual({ ids: [item(2).id, item(1).id] });
    expect(seen.auth).toBe("Bearer tok");
    expect(seen.keepalive).toBe(true);

    await user.click(bell); // closed
    await user.click(bell); // opened again: the same items, nothing new to report
    expect(screen.getByRole("dialog", { name: "Notifications" })).toBeInTheDocument();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reports(calls, `${INBOX}/seen`)).toHaveLength(1);

    // A notification streamed in while the dropdown is open is reported, alone.
    act(() => FakeEventSource.latest().emit("notification", item(3), "pos-3"));
    await waitFor(() => expect(reports(calls, `${INBOX}/seen`)).toHaveLength(2));
    expect(reports(calls, `${INBOX}/seen`)[1].body).toEqual({ ids: [item(3).id] });
  });

  it("posts a click for the item whose \"View issue\" is followed, and shows it read", async () => {
    const { calls } = fakeFetch({
      [`GET ${INBOX}`]: () => ({ json: { items: [item(2), item(1)], next_cursor: null, unread_count: 2 } }),
      [`POST ${INBOX}/seen`]: () => ({ json: { recorded: 2 } }),
      [`POST ${INBOX}/${item(1).id}/click`]: () => ({
        json: { id: item(1).id, link: item(1).link, read_at: new Date().toISOString() },
      }),
    });
    // jsdom does not navigate; the browser's own following of the link is stopped after the bell's handler ran.
    const stopNavigation = (event: MouseEvent) => event.preventDefault();
    window.addEventListener("click", stopNavigation);
    try {
      const user = userEvent.setup();
      renderBell();
      await user.click(await screen.findByRole("button", { name: "Notifications, 2 unread" }));
      const entries = within(screen.getByRole("dialog", { name: "Notifications" })).getAllByRole("listitem");
      await user.click(within(entries[1]).getByRole("link", { name: /View issue/ }));

      await screen.findByRole("button", { name: "Notifications, 1 unread" });
      const clicks = calls.filter((c) => c.method === "POST" && c.path.endsWith("/click"));
      expect(clicks.map((c) => c.path)).toEqual([`${INBOX}/${item(1).id}/click`]);
      expect(clicks[0].keepalive).toBe(true);
      expect(clicks[0].auth).toBe("Bearer tok");
      expect(within(entries[1]).queryByRole("button", { name: "Mark as read" })).toBeNull();
      // The click route marks it read: no separate mark-read request.
      expect(calls.some((c) => c.path.endsWith("/read"))).toBe(false);
    } finally {
      window.removeEventListener("click", stopNavigation);
    }
  });

  it("reports the click before handing the item to onViewIssue (an app's own routing)", async () => {
    const { calls } = fakeFetch({
      [`GET ${INBOX}`]: () => ({ json: { items: [item(1, { read_at: "2026-01-01T01:00:00Z" })], next_cursor: null, unread_count: 0 } }),
      [`POST ${INBOX}/seen`]: () => ({ json: { recorded: 1 } }),
      [`POST ${INBOX}/${item(1).id}/click`]: () => ({ json: { id: item(1).id, link: item(1).link, read_at: "2026-01-01T01:00:00Z" } }),
    });
    const viewed: InboxItem[] = [];
    const user = userEvent.setup();
    renderBell("en", {}, (shown) => viewed.push(shown));
    await user.click(await screen.findByRole("button", { name: "Notifications, 0 unread" }));
    await user.click(screen.getByRole("link", { name: /View issue/ }));
    expect(viewed.map((v) => v.id)).toEqual([item(1).id]);
    await waitFor(() => expect(calls.some((c) => c.path === `${INBOX}/${item(1).id}/click`)).toBe(true));
  });
});
