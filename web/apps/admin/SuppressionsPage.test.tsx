// The console's Suppressions page against a fake API (fetch): filters become the query, each entry shows its
// reason, code and text, when and the row that caused it; Load more follows the cursor; Suppress posts a MANUAL
// entry and shows the API's 422 / 409 beside the address; Reactivate deletes the entry and shows it removed.
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, expect, test, vi } from "vitest";
import { fakeFetch } from "../../src/test/fakes";
import type { Schemas } from "./api";
import { SuppressionsPage } from "./SuppressionsPage";

const S = "/api/v1/notifications/suppressions";
type Suppression = Schemas["SuppressionOut"];

function entry(n: number, fields: Partial<Suppression> = {}): Suppression {
  return {
    id: `00000000-0000-0000-0000-${String(n).padStart(12, "0")}`, channel: "EMAIL", address: `person${n}@bounce.example`,
    reason: "HARD_BOUNCE", scope: "ALL", status_code: "5.1.1", status_text: "user unknown",
    created_at: "2026-12-01T10:00:00Z", created_by: null, queue_id: `11111111-0000-0000-0000-${String(n).padStart(12, "0")}`,
    active: true, removed_at: null, removed_by: null, description: "suppressed: hard bounce 5.1.1 on 2026-12-01", ...fields,
  };
}

const listCalls = (calls: ReturnType<typeof fakeFetch>["calls"]) => calls.filter((c) => c.method === "GET" && c.path === S);

afterEach(() => vi.unstubAllGlobals());

test("lists entries with reason, code and text, when and the row that caused it; filters become the query", async () => {
  const { calls } = fakeFetch({
    [`GET ${S}`]: (_body, url) => ({
      json: url.searchParams.get("reason") === "COMPLAINT"
        ? { items: [entry(2, { reason: "COMPLAINT", scope: "NON_CRITICAL", status_code: null, status_text: "abuse report" })], next_cursor: null }
        : {
          items: [
            entry(1),
            entry(3, { reason: "MANUAL", status_code: null, status_text: "asked by phone", queue_id: null, created_by: "u-admin" }),
          ],
          next_cursor: null,
        },
    }),
  });
  const user = userEvent.setup();
  render(<SuppressionsPage />);

  const first = (await screen.findByText("person1@bounce.example")).closest("tr")!;
  expect(Object.fromEntries(listCalls(calls)[0].query)).toEqual({ limit: "50" });
  expect(first).toHaveTextContent("hard bounce");
  expect(first).toHaveTextContent("5.1.1 user unknown");
  expect(first).toHaveTextContent("queue row 11111111-0000-0000-0000-000000000001");
  expect(first).toHaveTextContent("suppressed");
  expect(within(first).getByTitle("suppressed: hard bounce 5.1.1 on 2026-12-01")).toBeInTheDocument();
  const manual = screen.getByText("person3@bounce.example").closest("tr")!;
  expect(manual).toHaveTextContent("manual");
  expect(manual).toHaveTextContent("asked by phone");
  expect(manual).toHaveTextContent("by u-admin");

  const filters = within(screen.getByRole("form", { name: "Filters" }));
  await user.selectOptions(filters.getByLabelText("Channel"), "EMAIL");
  await user.selectOptions(filters.getByLabelText("Reason"), "COMPLAINT");
  await user.type(filters.getByLabelText("Address"), " Person2@Bounce.example ");
  await user.selectOptions(filters.getByLabelText("State"), "true");
  expect(listCalls(calls)).toHaveLength(1); // nothing asked before Filter
  await user.click(screen.getByRole("button", { name: "Filter" }));

  await waitFor(() => expect(screen.queryByText("person1@bounce.example")).toBeNull());
  expect(Object.fromEntries(listCalls(calls).at(-1)!.query)).toEqual({
    channel: "EMAIL", reason: "COMPLAINT", address: "Person2@Bounce.example", active: "true", limit: "50",
  });
  const complaint = screen.getByText("person2@bounce.example").closest("tr")!;
  expect(complaint).toHaveTextContent("complaint");
  expect(complaint).toHaveTextContent("critical notifications still go");
  expect(complaint).toHaveTextContent("abuse report");

  await user.click(screen.getByRole("button", { name: "Clear" }));
  expect(await screen.findByText("person1@bounce.example")).toBeInTheDocument();
  expect(Object.fromEntries(listCalls(calls).at(-1)!.query)).toEqual({ limit: "50" });
});

test("Load more follows the cursor and appends the next page", async () => {
  const { calls } = fakeFetch({
    [`GET ${S}`]: (_body, url) => ({
      json: url.searchParams.get("cursor") === "c-2" ? { items: [entry(3)], next_cursor: null } : { items: [entry(1), entry(2)], next_cursor: "c-2" },
    }),
  });
  const user = userEvent.setup();
  render(<SuppressionsPage />);
  await user.click(await screen.findByRole("button", { name: "Load more" }));

  expect(await screen.findByText("person3@bounce.example")).toBeInTheDocument();
  expect(screen.getByText("person1@bounce.example")).toBeInTheDocument();
  expect(listCalls(calls).at(-1)!.query.get("cursor")).toBe("c-2");
  expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();
});

test("Suppress posts a MANUAL entry and reads the list again; the API's 422 and 409 are shown beside the address", async () => {
  let listed: Suppression[] = [entry(1)];
  const answers: { status: number; json: unknown }[] = [
    { status: 422, json: { detail: "address 'nobody' is not an email address" } },
    { status: 409, json: { detail: "EMAIL person1@bounce.example is already on the list (suppressed: hard bounce 5.1.1 on 2026-12-01, id x); DELETE … first to replace it" } },
  ];
  const { calls } = fakeFetch({
    [`GET ${S}`]: () => ({ json: { items: listed, next_cursor: null } }),
    [`POST ${S}`]: (body) => {
      const next = answers.shift();
      if (next) return next;
      const made = entry(9, { reason: "MANUAL", address: (body as { address: string }).address, status_code: null, status_text: "left the company", queue_id: null, created_by: "u-admin" });
      listed = [made, ...listed];
      return { status: 201, json: made };
    },
  });
  const user = userEvent.setup();
  render(<SuppressionsPage />);
  await screen.findByText("person1@bounce.example");
  const address = screen.getByLabelText("Address to suppress");
  const suppress = screen.getByRole("button", { name: "Suppress" });
  expect(suppress).toBeDisabled();

  await user.type(address, "nobody");
  await user.click(suppress);
  expect(await screen.findByText("address 'nobody' is not an email address")).toBeInTheDocument();
  expect(address).toHaveAttribute("aria-invalid", "true");
  expect(address).toHaveAccessibleDescription("address 'nobody' is not an email address");

  await user.clear(address);
  await user.type(address, "person1@bounce.example");
  await user.click(suppress);
  expect(await screen.findByText(/is already on the list/)).toBeInTheDocument();
  expect(address).toHaveAccessibleDescription(/already on the list/);

  await user.clear(address);
  await user.type(address, "gone@example.mg");
  await user.selectOptions(screen.getByLabelText("Scope"), "NON_CRITICAL");
  await user.type(screen.getByLabelText("Note"), "left the company");
  await user.click(suppress);
  expect(await screen.findByText("gone@example.mg")).toBeInTheDocument();
  expect(screen.getByText(/Added EMAIL gone@example.mg/)).toBeInTheDocument();
  expect(address).toHaveValue("");
  expect(address).toHaveAttribute("aria-invalid", "false");
  expect(calls.filter((c) => c.method === "POST").at(-1)!.body).toEqual({
    channel: "EMAIL", address: "gone@example.mg", scope: "NON_CRITICAL", note: "left the company",
  });
  expect(listCalls(calls)).toHaveLength(2);
});

test("a field the API names gets its message; a refusal about no field is said above", async () => {
  const answers = [
    { status: 422, json: { detail: "body.note: too long", errors: [{ field: "note", location: "body", message: "String should have at most 500 characters" }] } },
    { status: 403, json: { detail: "this route needs the admin role" } },
  ];
  fakeFetch({
    [`GET ${S}`]: () => ({ json: { items: [], next_cursor: null } }),
    [`POST ${S}`]: () => answers.shift()!,
  });
  const user = userEvent.setup();
  render(<SuppressionsPage />);
  expect(await screen.findByText("Nothing matches.")).toBeInTheDocument();
  await user.selectOptions(screen.getByLabelText("New entry channel"), "SMS");
  await user.type(screen.getByLabelText("Address to suppress"), "+261340000000");
  await user.type(screen.getByLabelText("Note"), "x");
  await user.click(screen.getByRole("button", { name: "Suppress" }));
  expect(await screen.findByText("String should have at most 500 characters")).toBeInTheDocument();
  expect(screen.getByLabelText("Note")).toHaveAttribute("aria-invalid", "true");
  expect(screen.getByLabelText("Address to suppress")).toHaveAttribute("aria-invalid", "false");

  await user.click(screen.getByRole("button", { name: "Suppress" }));
  expect(await screen.findByRole("alert")).toHaveTextContent("this route needs the admin role");
});

test("Reactivate deletes the entry and shows it removed, by whom", async () => {
  const { calls } = fakeFetch({
    [`GET ${S}`]: () => ({ json: { items: [entry(1), entry(2)], next_cursor: null } }),
    [`DELETE ${S}/${entry(2).id}`]: () => ({ json: entry(2, { active: false, removed_at: "2026-12-02T09:00:00Z", removed_by: "u-admin" }) }),
  });
  const user = userEvent.setup();
  render(<SuppressionsPage />);
  await screen.findByText("person2@bounce.example");
  await user.click(screen.getByRole("button", { name: "Reactivate person2@bounce.example" }));

  const line = screen.getByText("person2@bounce.example").closest("tr")!;
  expect(await within(line).findByRole("status")).toHaveTextContent("person2@bounce.example gets EMAIL notifications again");
  expect(line).toHaveTextContent("removed");
  expect(line).toHaveTextContent("by u-admin");
  expect(line).toHaveAttribute("data-active", "false");
  expect(within(line).queryByRole("button", { name: /Reactivate/ })).toBeNull();
  expect(screen.getByRole("button", { name: "Reactivate person1@bounce.example" })).toBeInTheDocument();
  expect(calls.filter((c) => c.method === "DELETE")).toHaveLength(1);
});

test("shows the API's refusal of the list", async () => {
  fakeFetch({ [`GET ${S}`]: () => ({ status: 422, json: { detail: "reason 'X' is not one of HARD_BOUNCE, …" } }) });
  render(<SuppressionsPage />);
  expect(await screen.findByRole("alert")).toHaveTextContent("reason 'X' is not one of");
  expect(screen.queryByText("Nothing matches.")).toBeNull();
});
