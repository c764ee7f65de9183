// The console's Analytics page against a fake API (fetch): the 7-day summary, the series drawn as charts
// (each an image named with its numbers), the days and grouping chosen, and the failure reasons.
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, expect, test, vi } from "vitest";
import { fakeFetch } from "../../src/test/fakes";
import type { Schemas } from "./api";
import { AnalyticsPage } from "./AnalyticsPage";

const A = "/api/v1/notifications/analytics";

const summary: Schemas["DeliveryAnalytics"] = {
  created_from: "2026-01-01T00:00:00Z", created_to: "2026-01-08T00:00:00Z", total: 12, sent: 9, failed: 3,
  success_rate: 0.75, median_seconds_to_send: 1.5,
  by_channel: [
    { channel: "EMAIL", sent: 6, failed: 2, success_rate: 0.75, median_seconds_to_send: 2 },
    { channel: "SMS", sent: 3, failed: 1, success_rate: 0.75, median_seconds_to_send: null },
  ],
  counts: [],
};

function day(date: string, fields: Partial<Schemas["DayRates"]>): Schemas["DayRates"] {
  return { day: date, sent: 0, failed: 0, success_rate: null, p50_seconds_to_send: null, p95_seconds_to_send: null, digested: 0, rate_capped: 0, ...fields };
}

function series(days: number): Schemas["AnalyticsSeries"] {
  return {
    created_from: "2026-01-06T00:00:00Z", created_to: "2026-01-08T00:00:00Z",
    volume: [
      { day: "2026-01-06", notification_type: "ISSUE_ASSIGNED", channel: "EMAIL", count: 4 },
      { day: "2026-01-06", notification_type: "ISSUE_CREATED", channel: "SMS", count: 1 },
      { day: "2026-01-07", notification_type: "ISSUE_ASSIGNED", channel: "SMS", count: 2 },
    ],
    days: [
      day("2026-01-06", { sent: 4, failed: 1, success_rate: 0.8, p50_seconds_to_send: 1.25, p95_seconds_to_send: 3, digested: 2 }),
      day("2026-01-07", { sent: 2, success_rate: 1, p50_seconds_to_send: 0.5, p95_seconds_to_send: 0.75, rate_capped: 1 }),
    ],
    top_failure_reasons: days === 30 ? [] : [{ reason: "550 mailbox unavailable", count: 3 }],
  };
}

function step(type: string, channel: string, fields: Partial<Schemas["FunnelStep"]>): Schemas["FunnelStep"] {
  return {
    day: null, notification_type: type, channel, sent: 0, delivered: 0, seen: 0, opened: 0, read: 0, clicked: 0, bounced: 0,
    complained: 0, bounce_rate: null, complaint_rate: null, median_seconds_to_read: null, ...fields,
  };
}

const mailFunnel = step("ISSUE_CREATED", "EMAIL", {
  sent: 4, delivered: 3, opened: 2, clicked: 1, bounced: 1, complained: 1, bounce_rate: 1 / 3, complaint_rate: 1 / 3,
});
const inboxFunnel = step("ISSUE_CREATED", "IN_APP", {
  sent: 4, delivered: 4, seen: 4, read: 3, clicked: 1, bounce_rate: 0, complaint_rate: 0, median_seconds_to_read: 120,
});

function engagement(channel: string | null): Schemas["EngagementFunnel"] {
  const totals = channel === "EMAIL" ? [mailFunnel] : channel === "SMS" ? [] : [mailFunnel, inboxFunnel];
  const days = totals.flatMap((t) => [
    { ...t, day: "2026-01-06", sent: t.sent - 1, read: Math.max(0, t.read - 1) },
    { ...t, day: "2026-01-07", sent: 1, read: t.read > 0 ? 1 : 0 },
  ]);
  return { created_from: "2026-01-01T00:00:00Z", created_to: "2026-01-15T00:00:00Z", days, totals };
}

afterEach(() => vi.unstubAllGlobals());

test("shows the summary and draws the series, by channel or by type, over the days chosen", async () => {
  const { calls } = fakeFetch({
    [`GET ${A}`]: () => ({ json: summary }),
    [`GET ${A}/series`]: (_body, url) => ({ json: series(Number(url.searchParams.get("days"))) }),
    [`GET ${A}/engagement`]: (_body, url) => ({ json: engagement(url.searchParams.get("channel")) }),
  });
  const user = userEvent.setup();
  render(<AnalyticsPage />);

  expect(await screen.findByText(/12 deliveries, 9 sent, 3 failed, success 75\.0 %, median time to send 1\.50 s/)).toBeInTheDocument();
  expect(await screen.findByRole("img", { name: "Deliveries per day by channel: 2026-01-06 5, 2026-01-07 2" })).toBeInTheDocument();
  expect(screen.getByText("EMAIL", { selector: ".legend span" })).toBeInTheDocument();
  expect(screen.getByRole("img", { name: "Success rate per day: success rate (0–1) 0.8 1" })).toBeInTheDocument();
  expect(screen.getByRole("img", { name: "Time to send per day (seconds): p50 1.25 0.5; p95 3 0.75" })).toBeInTheDocument();
  expect(screen.getByRole("img", { name: "Diverted per day: 2026-01-06 2, 2026-01-07 1" })).toBeInTheDocument();
  expect(calls.find((c) => c.path === `${A}/series`)!.query.get("days")).toBe("14");

  const byChannel = within(screen.getByRole("heading", { name: "By channel (7 days)" }).nextElementSibling as HTMLElement);
  expect(byChannel.getAllByRole("row").map((row) => row.textContent)).toEqual([
    "ChannelSentFailedSuccessMedian to send", "EMAIL6275.0 %2.00 s", "SMS3175.0 %—",
  ]);
  expect(screen.getByRole("heading", { name: "Top failure reasons (14 days)" })).toBeInTheDocument();
  expect(screen.getByRole("cell", { name: "550 mailbox unavailable" })).toBeInTheDocument();

  await user.selectOptions(screen.getByLabelText("Volume by"), "notification_type");
  expect(screen.getByRole("img", { name: "Deliveries per day by type: 2026-01-06 5, 2026-01-07 2" })).toBeInTheDocument();
  expect(screen.getByText("ISSUE_ASSIGNED", { selector: ".legend span" })).toBeInTheDocument();

  await user.selectOptions(screen.getByLabelText("Days"), "30");
  expect(await screen.findByRole("heading", { name: "Top failure reasons (30 days)" })).toBeInTheDocument();
  await waitFor(() => expect(screen.getByText("No failures.")).toBeInTheDocument());
  expect(calls.filter((c) => c.path === `${A}/series`).at(-1)!.query.get("days")).toBe("30");
});

test("shows the API's refusal", async () => {
  fakeFetch({
    [`GET ${A}`]: () => ({ status: 403, json: { detail: "this route needs the admin role" } }),
    [`GET ${A}/series`]: () => ({ status: 403, json: { detail: "this route needs the admin role" } }),
    [`GET ${A}/engagement`]: () => ({ status: 403, json: { detail: "this route needs the admin role" } }),
  });
  render(<AnalyticsPage />);
  expect(await screen.findByRole("alert")).toHaveTextContent("this route needs the admin role");
  expect(screen.queryByRole("img")).toBeNull();
});

test("draws the engagement funnel per type × channel over the days chosen, with rates and time to read as text", async () => {
  const { calls } = fakeFetch({
    [`GET ${A}`]: () => ({ json: summary }),
    [`GET ${A}/series`]: (_body, url) => ({ json: series(Number(url.searchParams.get("days"))) }),
    [`GET ${A}/engagement`]: (_body, url) => ({ json: engagement(url.searchParams.get("channel")) }),
  });
  const user = userEvent.setup();
  const before = Date.now();
  render(<AnalyticsPage />);

  expect(await screen.findByRole("img", { name: "ISSUE_CREATED × IN_APP: sent 4, delivered 4, seen 4, read 3, clicked 1" })).toBeInTheDocument();
  expect(screen.getByRole("img", { name: "ISSUE_CREATED × EMAIL: sent 4, delivered 3, seen 0, read 0, clicked 1" })).toBeInTheDocument();
  expect(screen.getByRole("heading", { name: "Engagement funnel (14 days)" })).toBeInTheDocument();
  // Each bar says its count and its share of sent.
  const mail = within(screen.getByRole("img", { name: /^ISSUE_CREATED × EMAIL/ }));
  expect(mail.getByText("3 (75 %)")).toBeInTheDocument();
  expect(mail.getByText("1 (25 %)")).toBeInTheDocument();
  expect(mail.getAllByText("0 (0 %)")).toHaveLength(2);
  expect(screen.getByLabelText("ISSUE_CREATED × EMAIL rates")).toHaveTextContent(
    "Bounce rate 33.3 % (1), complaint rate 33.3 % (1), median time to read —, opened by a person 2.",
  );
  expect(screen.getByLabelText("ISSUE_CREATED × IN_APP rates")).toHaveTextContent(
    "Bounce rate 0.0 % (0), complaint rate 0.0 % (0), median time to read 2 min.",
  );
  // Each type × channel's days, in a table under its funnel.
  const inboxDays = within(screen.getByRole("table", { name: "ISSUE_CREATED × IN_APP by day" }));
  expect(inboxDays.getAllByRole("row").map((r) => r.textContent)).toEqual([
    "DaySentDeliveredSeenReadClickedMedian to read",
    "2026-01-06344212 min",
    "2026-01-07144112 min",
  ]);
  // The period asked for is the last 14 days, all channels.
  const first = calls.find((c) => c.path === `${A}/engagement`)!;
  const from = Date.parse(first.query.get("from")!);
  expect(from).toBeGreaterThanOrEqual(before - 14 * 86_400_000);
  expect(from).toBeLessThanOrEqual(Date.now() - 14 * 86_400_000);
  expect(first.query.get("channel")).toBeNull();

  await user.selectOptions(screen.getByLabelText("Funnel channel"), "EMAIL");
  await waitFor(() => expect(screen.queryByRole("img", { name: /ISSUE_CREATED × IN_APP/ })).toBeNull());
  expect(screen.getByRole("img", { name: /ISSUE_CREATED × EMAIL/ })).toBeInTheDocument();
  expect(calls.filter((c) => c.path === `${A}/engagement`).at(-1)!.query.get("channel")).toBe("EMAIL");

  await user.selectOptions(screen.getByLabelText("Funnel channel"), "SMS");
  expect(await screen.findByText("Nothing sent in this period.")).toBeInTheDocument();

  await user.selectOptions(screen.getByLabelText("Days"), "30");
  expect(await screen.findByRole("heading", { name: "Engagement funnel (30 days)" })).toBeInTheDocument();
  await waitFor(() => {
    const last = calls.filter((c) => c.path === `${A}/engagement`).at(-1)!;
    expect(Date.parse(last.query.get("from")!)).toBeLessThanOrEqual(Date.now() - 30 * 86_400_000);
  });
});
