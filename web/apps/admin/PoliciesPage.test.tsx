// The console's Policies page against a fake API: edit a tier, save, the API's message beside the field,
// and the sample issue's next firings from the answer.
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, expect, test, vi } from "vitest";
import { PoliciesPage, type Policy } from "./PoliciesPage";
import type { ReadEscalation } from "./ReadEscalations";

const CREATED = "2026-01-05T10:00:00Z";

function policy(priority: Policy["priority"], due: number, tiers: Policy["tiers"]): Policy {
  const at = (minutes: number) => new Date(Date.parse(CREATED) + minutes * 60000).toISOString();
  return {
    priority, due_minutes: due, tiers, repeat_last: 0, repeat_every_minutes: 240, updated_at: CREATED,
    sample: {
      created_at: CREATED, due_at: at(due),
      firings: [
        { at: at(due), tier: 0, repeat: 0, audience: "assignee" },
        ...tiers.map((t, i) => ({ at: at(due + t.after_minutes), tier: i + 1, repeat: 0, audience: t.audience })),
      ],
    },
  };
}

function answer(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

afterEach(() => vi.unstubAllGlobals());

test("edits a tier, shows the API's message beside it, then the new firings once saved", async () => {
  const calls: { method: string; url: string; body: unknown }[] = [];
  let refuse = true;
  vi.stubGlobal("fetch", vi.fn(async (url: string, init: RequestInit) => {
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method: init.method ?? "GET", url, body });
    if (init.method === "GET" && url.includes("read-escalations")) return answer(200, []);
    if (init.method === "GET") return answer(200, [policy("CRITICAL", 240, [{ after_minutes: 120, audience: "admins" }])]);
    if (refuse) {
      refuse = false;
      return answer(422, {
        detail: "invalid request — tiers[0].after_minutes: Input should be greater than 0",
        errors: [{ field: "tiers[0].after_minutes", location: "body", message: "Input should be greater than 0" }],
      });
    }
    return answer(200, policy("CRITICAL", body.due_minutes, body.tiers));
  }));
  const user = userEvent.setup();
  render(<PoliciesPage />);

  const form = await screen.findByRole("form", { name: "CRITICAL" });
  const firings = within(screen.getByRole("region", { name: "Next firings, CRITICAL" }));
  expect(firings.getAllByRole("row")).toHaveLength(3); // header, due, tier 1
  expect(firings.getByText("6 h")).toBeInTheDocument();

  const after = within(form).getByLabelText("Tier 1 after (minutes)");
  await user.clear(after);
  await user.type(after, "0");
  await user.click(within(form).getByRole("button", { name: "Save CRITICAL" }));
  expect(await within(form).findByText("Input should be greater than 0")).toBeInTheDocument();
  expect(after).toHaveAttribute("aria-invalid", "true");
  expect(after).toHaveAccessibleDescription("Input should be greater than 0");

  await user.clear(after);
  await user.type(after, "30");
  await user.click(within(form).getByRole("button", { name: "Add tier" }));
  await user.selectOptions(within(form).getByLabelText("Tier 2 audience"), "admins");
  await user.clear(within(form).getByLabelText("Due after (minutes)"));
  await user.type(within(form).getByLabelText("Due after (minutes)"), "60");
  await user.click(within(form).getByRole("button", { name: "Save CRITICAL" }));

  expect(await within(form).findByRole("status")).toHaveTextContent("Saved CRITICAL");
  expect(calls.at(-1)).toEqual({
    method: "PUT",
    url: "/api/v1/notifications/escalation-policies/CRITICAL",
    body: {
      due_minutes: 60,
      tiers: [{ after_minutes: 30, audience: "admins" }, { after_minutes: 150, audience: "admins" }],
      repeat_last: 0,
      repeat_every_minutes: 240,
    },
  });
  expect(within(form).queryByText("Input should be greater than 0")).not.toBeInTheDocument();
  expect(firings.getAllByRole("row")).toHaveLength(4);
  expect(firings.getByText("1 h")).toBeInTheDocument(); // due
  expect(firings.getByText("90 min")).toBeInTheDocument(); // tier 1
  expect(firings.getByText("210 min")).toBeInTheDocument(); // tier 2
});

function rule(type: ReadEscalation["notification_type"], fields: Partial<ReadEscalation> = {}): ReadEscalation {
  return { notification_type: type, enabled: false, after_minutes: 60, channel: "EMAIL", updated_at: CREATED, updated_by: null, ...fields };
}

test("escalation on unread: one line per type; the API's message beside the minutes; saved with the switch and channel", async () => {
  const calls: { method: string; url: string; body: unknown }[] = [];
  let refuse = true;
  vi.stubGlobal("fetch", vi.fn(async (url: string, init: RequestInit) => {
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    calls.push({ method: init.method ?? "GET", url, body });
    if (url === "/api/v1/notifications/read-escalations") {
      return answer(200, [rule("ISSUE_ASSIGNED"), rule("SYSTEM_ERROR_SPIKE", { enabled: true, after_minutes: 10, channel: "SMS" })]);
    }
    if (init.method === "GET") return answer(200, []);
    if (refuse) {
      refuse = false;
      return answer(422, {
        detail: "invalid request — after_minutes: Input should be less than or equal to 10080",
        errors: [{ field: "after_minutes", location: "body", message: "Input should be less than or equal to 10080" }],
      });
    }
    return answer(200, rule("ISSUE_ASSIGNED", { ...body, updated_by: "u-admin" }));
  }));
  const user = userEvent.setup();
  render(<PoliciesPage />);

  const section = await screen.findByRole("region", { name: "Escalation on unread" });
  const assigned = await within(section).findByRole("form", { name: "Escalation on unread, ISSUE_ASSIGNED" });
  expect(within(section).getAllByRole("form")).toHaveLength(2);
  const spike = within(section).getByRole("form", { name: "Escalation on unread, SYSTEM_ERROR_SPIKE" });
  expect(within(spike).getByRole("switch", { name: "Escalate SYSTEM_ERROR_SPIKE when unread" })).toBeChecked();
  expect(within(spike).getByLabelText("SYSTEM_ERROR_SPIKE unread after (minutes)")).toHaveValue(10);
  expect(within(spike).getByLabelText("SYSTEM_ERROR_SPIKE also send on")).toHaveValue("SMS");

  const toggle = within(assigned).getByRole("switch", { name: "Escalate ISSUE_ASSIGNED when unread" });
  const minutes = within(assigned).getByLabelText("ISSUE_ASSIGNED unread after (minutes)");
  expect(toggle).not.toBeChecked();
  await user.click(toggle);
  await user.clear(minutes);
  await user.type(minutes, "20000");
  await user.click(within(assigned).getByRole("button", { name: "Save ISSUE_ASSIGNED" }));
  expect(await within(assigned).findByText("Input should be less than or equal to 10080")).toBeInTheDocument();
  expect(minutes).toHaveAttribute("aria-invalid", "true");
  expect(minutes).toHaveAccessibleDescription("Input should be less than or equal to 10080");
  expect(within(assigned).queryByRole("alert")).toBeNull(); // the message is beside its field, not repeated

  await user.clear(minutes);
  await user.type(minutes, "45");
  await user.selectOptions(within(assigned).getByLabelText("ISSUE_ASSIGNED also send on"), "SLACK");
  await user.click(within(assigned).getByRole("button", { name: "Save ISSUE_ASSIGNED" }));
  expect(await within(assigned).findByRole("status")).toHaveTextContent("Saved ISSUE_ASSIGNED");
  expect(calls.at(-1)).toEqual({
    method: "PUT",
    url: "/api/v1/notifications/read-escalations/ISSUE_ASSIGNED",
    body: { enabled: true, after_minutes: 45, channel: "SLACK" },
  });
  expect(minutes).not.toHaveAttribute("aria-invalid", "true");
  expect(within(assigned).queryByText("Input should be less than or equal to 10080")).toBeNull();
  expect(calls.filter((c) => c.method === "PUT")).toHaveLength(2); // the other line was not touched
});
