// The console's Why (not)? page against a fake API (fetch): the question asked, and per event and channel
// the decision the API returned, with its reason.
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, expect, test, vi } from "vitest";
import { fakeFetch } from "../../src/test/fakes";
import type { Schemas } from "./api";
import { WhyPage } from "./WhyPage";

const WHY = "/api/v1/notifications/why";

function decision(channel: string, fields: Partial<Schemas["ChannelDecision"]>): Schemas["ChannelDecision"] {
  return {
    queue_id: `q-${channel}`, notification_type: "ISSUE_ASSIGNED", channel, decision: "sent", reason: null, status: "SENT",
    at: "2026-01-05T10:00:02Z", attempts: 1, address: null, workflow_id: "wf-1", workflow_url: null, recorded: null, ...fields,
  };
}

function answer(fields: Partial<Schemas["WhyAnswer"]> = {}): Schemas["WhyAnswer"] {
  return {
    issue_id: "ISS-42", user_id: "u-agent", user_known: true, truncated: false,
    events: [{
      event_id: "e-1", event_type: "ISSUE_ASSIGNED", actor_id: "u-lead", occurred_at: "2026-01-05T10:00:00Z",
      workflow_id: "wf-1", workflow_url: "http://temporal.test/wf-1", note: null,
      decisions: [
        decision("EMAIL", { address: "agent@example.mg" }),
        decision("SMS", { decision: "skipped", reason: "turned off in the person's settings", status: "CANCELLED", attempts: 0 }),
      ],
    }],
    ...fields,
  };
}

afterEach(() => vi.unstubAllGlobals());

test("asks for the issue and person typed, and shows each channel's decision and why", async () => {
  const { calls } = fakeFetch({ [`GET ${WHY}`]: () => ({ json: answer() }) });
  const user = userEvent.setup();
  render(<WhyPage initial={new URLSearchParams()} />);
  expect(calls).toHaveLength(0); // nothing to ask yet

  await user.type(screen.getByLabelText("Issue"), " ISS-42 ");
  await user.type(screen.getByLabelText("Person"), "u-agent");
  await user.click(screen.getByRole("button", { name: "Explain" }));

  const event = await screen.findByRole("article");
  expect(Object.fromEntries(calls[0].query)).toEqual({ issue_id: "ISS-42", user_id: "u-agent" });
  expect(within(event).getByRole("heading")).toHaveTextContent("ISSUE_ASSIGNED e-1");
  expect(within(event).getByRole("heading")).toHaveTextContent("by u-lead");
  const [, email, sms] = within(event).getAllByRole("row");
  expect(within(email).getAllByRole("cell").map((cell) => cell.textContent)).toEqual(
    expect.arrayContaining(["EMAIL", "sent", "agent@example.mg"]),
  );
  expect(within(sms).getByText("skipped")).toBeInTheDocument();
  expect(within(sms).getByText("turned off in the person's settings")).toBeInTheDocument();
  expect(screen.queryByText(/not in the directory/)).toBeNull();
});

test("asks at once for the question in the address, and says when the person is unknown or the list is cut", async () => {
  const { calls } = fakeFetch({
    [`GET ${WHY}`]: () => ({
      json: answer({
        user_id: "u-ghost", user_known: false, truncated: true,
        events: [{ event_id: null, event_type: null, actor_id: null, occurred_at: null, workflow_id: null, workflow_url: null,
          note: "deliveries without an event (a digest, a test send)", decisions: [] }],
      }),
    }),
  });
  render(<WhyPage initial={new URLSearchParams("issue_id=ISS-7&user_id=u-ghost")} />);

  expect(await screen.findByText("u-ghost is not in the directory: nothing can reach them.")).toBeInTheDocument();
  expect(Object.fromEntries(calls[0].query)).toEqual({ issue_id: "ISS-7", user_id: "u-ghost" });
  expect(screen.getByLabelText("Issue")).toHaveValue("ISS-7");
  expect(screen.getByText("deliveries without an event (a digest, a test send)")).toBeInTheDocument();
  expect(screen.getByText("Only the first 2,000 deliveries are shown.")).toBeInTheDocument();
  expect(screen.queryByRole("table")).toBeNull();
});

test("says when the issue has no event, and shows the API's refusal in place of an answer", async () => {
  let refuse = false;
  fakeFetch({
    [`GET ${WHY}`]: () => (refuse
      ? { status: 422, json: { detail: "invalid request — query parameter issue_id: String should have at most 64 characters", errors: [] } }
      : { json: answer({ events: [] }) }),
  });
  const user = userEvent.setup();
  render(<WhyPage initial={new URLSearchParams("issue_id=ISS-42&user_id=u-agent")} />);
  expect(await screen.findByText("No event recorded for ISS-42.")).toBeInTheDocument();

  refuse = true;
  await user.click(screen.getByRole("button", { name: "Explain" }));
  expect(await screen.findByRole("alert")).toHaveTextContent("query parameter issue_id: String should have at most 64 characters");
  expect(screen.queryByText("No event recorded for ISS-42.")).toBeNull();
});

test("shows each row's engagement and the decision stored on it, with the escalation on unread it came from", async () => {
  fakeFetch({
    [`GET ${WHY}`]: () => ({
      json: answer({
        events: [{
          event_id: "e-1", event_type: "ISSUE_ASSIGNED", actor_id: "u-lead", occurred_at: "2026-01-05T10:00:00Z",
          workflow_id: "wf-1", workflow_url: null, note: null,
          decisions: [
            decision("IN_APP", {
              recorded: { outcome: "SEND", reason: "immediate", at: "2026-01-05T10:00:01Z" },
              engagement: [
                { kind: "SEEN", occurred_at: "2026-01-05T10:01:00Z", last_at: "2026-01-05T10:20:00Z", count: 3, detail: null },
                { kind: "CLICKED", occurred_at: "2026-01-05T10:02:00Z", last_at: "2026-01-05T10:02:00Z", count: 1, detail: { link: "issue" } },
              ],
            }),
            decision("EMAIL", {
              queue_id: "q-escalated",
              recorded: { outcome: "SEND", reason: "unread after 60 min: also sent by EMAIL", escalated_from: "unread after 60 min" },
            }),
            decision("SMS", { decision: "skipped", status: "CANCELLED", attempts: 0 }),
          ],
        }],
      }),
    }),
  });
  render(<WhyPage initial={new URLSearchParams("issue_id=ISS-42&user_id=u-agent")} />);
  const event = await screen.findByRole("article");
  const [header, inApp, email, sms] = within(event).getAllByRole("row");
  expect(header).toHaveTextContent("Stored decision");
  expect(header).toHaveTextContent("Engagement");

  const engagement = within(inApp).getByRole("list", { name: "Engagement" });
  const kinds = within(engagement).getAllByRole("listitem");
  expect(kinds.map((k) => k.getAttribute("data-kind"))).toEqual(["SEEN", "CLICKED"]);
  expect(kinds[0]).toHaveTextContent("seen");
  expect(kinds[0]).toHaveTextContent("×3");
  expect(kinds[1]).toHaveTextContent("clicked");
  expect(kinds[1]).not.toHaveTextContent("×");
  expect(inApp).toHaveTextContent("SEND immediate");

  expect(email).toHaveTextContent("escalation on unread");
  expect(email).toHaveTextContent("escalated: unread after 60 min");
  expect(within(email).getByText("none")).toBeInTheDocument(); // no engagement yet

  expect(sms).toHaveTextContent("not recorded (row stored before decisions were)");
});
