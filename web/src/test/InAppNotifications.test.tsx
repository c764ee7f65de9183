import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { InAppNotifications, NotiflowProvider } from "../index";
import { FakeEventSource, fakeFetch, item } from "./fakes";

const INBOX = "/api/v1/notifications/inbox";

function renderBell(locale = "en", options = {}) {
  return render(
    <NotiflowProvider apiUrl="http://notiflow.test" token="tok" locale={locale}
      inboxOptions={{ EventSource: FakeEventSource as unknown as typeof EventSource, pollIntervalMs: 50, ...options }}>
      <InAppNotifications />
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
