// The console's Policies page against a fake API: edit a tier, save, the API's message beside the field,
// and the sample issue's next firings from the answer.
import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, expect, test, vi } from "vitest";
import { PoliciesPage, type Policy } from "./PoliciesPage";

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
