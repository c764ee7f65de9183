// The console's Queue page against a fake API (fetch): filters become the query, rows show what the API
// answered, Load more follows the cursor, Redeliver posts the row's own filters.
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, expect, test, vi } from "vitest";
import { fakeFetch } from "../../src/test/fakes";
import type { Schemas } from "./api";
import { QueuePage } from "./QueuePage";

const QUEUE = "/api/v1/notifications/queue";

function row(n: number, fields: Partial<Schemas["QueueItem"]> = {}): Schemas["QueueItem"] {
  return {
    id: `q-${n}`, notification_type: "ISSUE_ASSIGNED", channel: "EMAIL", status: "SENT", recipient_id: `u-${n}`,
    address: `person${n}@example.mg`, template_name: "issue_assigned_email_en", subject: `Issue ${n}`, content: "…",
    event_id: `e-${n}`, issue_id: `ISS-${n}`, scheduled_at: "2026-01-05T10:00:00Z", sent_at: "2026-01-05T10:00:02Z",
    created_at: "2026-01-05T10:00:00Z", error_message: null, retry_count: 0, max_retries: 3,
    workflow_id: `wf-${n}`, workflow_url: `http://temporal.test/wf-${n}`, attempts: [], ...fields,
  };
}

const queueCalls = (calls: ReturnType<typeof fakeFetch>["calls"]) => calls.filter((c) => c.method === "GET" && c.path === QUEUE);

afterEach(() => vi.unstubAllGlobals());

test("lists the queue, then asks for exactly the filters chosen, and clears them", async () => {
  const { calls } = fakeFetch({
    [`GET ${QUEUE}`]: (_body, url) => ({
      json: url.searchParams.get("status") === "FAILED"
        ? { items: [row(2, { status: "FAILED", error_message: "550 mailbox unavailable" })], next_cursor: null }
        : { items: [row(1), row(2)], next_cursor: null },
    }),
  });
  const user = userEvent.setup();
  render(<QueuePage />);

  expect(await screen.findByText("person1@example.mg")).toBeInTheDocument();
  expect(Object.fromEntries(queueCalls(calls)[0].query)).toEqual({ limit: "50" });

  await user.selectOptions(screen.getByLabelText("Status"), "FAILED");
  await user.selectOptions(screen.getByLabelText("Channel"), "EMAIL");
  await user.type(screen.getByLabelText("Recipient"), "u-2");
  fireEvent.change(screen.getByLabelText("From"), { target: { value: "2026-01-05T08:30" } });
  expect(queueCalls(calls)).toHaveLength(1); // nothing asked before Filter
  await user.click(screen.getByRole("button", { name: "Filter" }));

  await waitFor(() => expect(screen.queryByText("person1@example.mg")).toBeNull());
  expect(Object.fromEntries(queueCalls(calls).at(-1)!.query)).toEqual({
    status: "FAILED", channel: "EMAIL", recipient_id: "u-2", created_from: new Date("2026-01-05T08:30").toISOString(), limit: "50",
  });
  const failed = screen.getByText("person2@example.mg").closest("tr")!;
  expect(failed).toHaveTextContent("550 mailbox unavailable");
  expect(within(failed).getByRole("link", { name: "ISS-2" })).toHaveAttribute("href", "#/why?issue_id=ISS-2&user_id=u-2");

  await user.click(screen.getByRole("button", { name: "Clear" }));
  expect(await screen.findByText("person1@example.mg")).toBeInTheDocument();
  expect(Object.fromEntries(queueCalls(calls).at(-1)!.query)).toEqual({ limit: "50" });
  expect(screen.getByLabelText("Status")).toHaveValue("");
});

test("Load more follows the cursor and appends the next page", async () => {
  const { calls } = fakeFetch({
    [`GET ${QUEUE}`]: (_body, url) => ({
      json: url.searchParams.get("cursor") === "c-2" ? { items: [row(3)], next_cursor: null } : { items: [row(1), row(2)], next_cursor: "c-2" },
    }),
  });
  const user = userEvent.setup();
  render(<QueuePage />);
  await user.click(await screen.findByRole("button", { name: "Load more" }));

  expect(await screen.findByText("person3@example.mg")).toBeInTheDocument();
  expect(screen.getByText("person1@example.mg")).toBeInTheDocument();
  expect(queueCalls(calls).at(-1)!.query.get("cursor")).toBe("c-2");
  expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();
});

test("Redeliver posts the failed row's own filters once, says so, and reads the queue again", async () => {
  const failed = row(4, {
    status: "FAILED", channel: "SMS", notification_type: "ISSUE_OVERDUE",
    attempts: [{ attempt: 1, status: "FAILED", sent_at: null, error_details: "gateway timeout", created_at: "2026-01-05T10:00:01Z" }],
  });
  const { calls } = fakeFetch({
    [`GET ${QUEUE}`]: () => ({ json: { items: [row(1), failed], next_cursor: null } }),
    ["POST /api/v1/notifications/redeliver"]: () => ({ status: 202, json: { workflow_id: "redeliver-7", workflow_url: "http://t/redeliver-7", request_id: "r" } }),
  });
  const user = userEvent.setup();
  render(<QueuePage />);

  const line = (await screen.findByText("person4@example.mg")).closest("tr")!;
  expect(within(screen.getByText("person1@example.mg").closest("tr")!).queryByRole("button", { name: "Redeliver" })).toBeNull();
  await user.click(within(line).getByRole("button", { name: "Redeliver" }));

  expect(await within(line).findByRole("status")).toHaveTextContent("Redelivery started: redeliver-7");
  expect(calls.find((c) => c.method === "POST")!.body).toEqual({
    workflow_id: "wf-4", recipient_id: "u-4", channel: "SMS", notification_type: "ISSUE_OVERDUE", issue_id: "ISS-4",
    request_id: "console-q-4-1",
  });
  await waitFor(() => expect(queueCalls(calls)).toHaveLength(2), { timeout: 3000 });
});

test("shows the API's refusal", async () => {
  fakeFetch({ [`GET ${QUEUE}`]: () => ({ status: 403, json: { detail: "this route needs the admin role" } }) });
  render(<QueuePage />);
  expect(await screen.findByRole("alert")).toHaveTextContent("this route needs the admin role");
  expect(screen.queryByText("Nothing matches.")).toBeNull();
});

test("shows each row's stored decision and its engagement, compactly", async () => {
  fakeFetch({
    [`GET ${QUEUE}`]: () => ({
      json: {
        items: [
          row(1, {
            channel: "IN_APP",
            decision: { outcome: "SEND", reason: "immediate", at: "2026-01-05T10:00:00Z" },
            engagement: [
              { kind: "SEEN", occurred_at: "2026-01-05T10:01:00Z", last_at: "2026-01-05T10:09:00Z", count: 2, detail: null },
              { kind: "READ", occurred_at: "2026-01-05T10:03:00Z", last_at: "2026-01-05T10:03:00Z", count: 1, detail: null },
            ],
          }),
          row(2, {
            decision: { outcome: "HELD", reason: "quiet hours", held_until: "2026-01-06T05:00:00Z" },
            engagement: [
              { kind: "OPENED", occurred_at: "2026-01-05T10:00:05Z", last_at: "2026-01-05T10:00:05Z", count: 1, detail: { machine: true } },
              { kind: "BOUNCED", occurred_at: "2026-01-05T10:05:00Z", last_at: "2026-01-05T10:05:00Z", count: 1, detail: null },
            ],
          }),
          row(3, { decision: { outcome: "SEND", reason: "unread after 10 min: also sent by SMS", escalated_from: "unread after 10 min" } }),
          row(4, { decision: null }),
        ],
        next_cursor: null,
      },
    }),
  });
  render(<QueuePage />);
  const first = (await screen.findByText("person1@example.mg")).closest("tr")!;
  expect(screen.getByRole("columnheader", { name: "Decision" })).toBeInTheDocument();
  expect(screen.getByRole("columnheader", { name: "Engagement" })).toBeInTheDocument();

  expect(first).toHaveTextContent("SEND immediate");
  const seen = within(within(first).getByRole("list", { name: "Engagement" })).getAllByRole("listitem");
  expect(seen.map((k) => k.getAttribute("data-kind"))).toEqual(["SEEN", "READ"]);
  expect(seen[0]).toHaveTextContent(/^seen .*×2$/);
  expect(seen[0]).toHaveAttribute("title", expect.stringMatching(/^last /));

  const second = screen.getByText("person2@example.mg").closest("tr")!;
  expect(second).toHaveTextContent("HELD quiet hours");
  expect(second).toHaveTextContent("held until");
  expect(second).toHaveTextContent("opened (machine)");
  expect(second).toHaveTextContent("bounced");

  const third = screen.getByText("person3@example.mg").closest("tr")!;
  expect(third).toHaveTextContent("escalated: unread after 10 min");
  expect(within(third).getByText("none")).toBeInTheDocument();

  const fourth = screen.getByText("person4@example.mg").closest("tr")!;
  expect(fourth).toHaveTextContent("not recorded");
});
