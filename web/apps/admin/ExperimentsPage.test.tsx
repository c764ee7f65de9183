// The console's Experiments page against a fake API (fetch): create from versions of one template (weights,
// control, holdout, goal, window, minimum sample; the API's 422 beside its field), start / stop / promote, and the
// results per arm — rates with their interval, p-value, the chance to beat control as a bar, "not enough data".
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, expect, test, vi } from "vitest";
import { fakeFetch } from "../../src/test/fakes";
import type { Schemas } from "./api";
import { ExperimentsPage } from "./ExperimentsPage";

const E = "/api/v1/notifications/experiments";
const T = "/api/v1/notifications/templates";
type Experiment = Schemas["ExperimentOut"];
type Results = Schemas["ExperimentResults"];

const version = (n: number, active = false): Schemas["TemplateOut"] => ({
  id: `t-${n}`, name: "issue_created_email_en", display_name: "Issue created", description: null,
  notification_type: "ISSUE_CREATED", channel: "EMAIL", locale: "en", subject_template: `Subject v${n}`,
  body_template: "…", html_template: null, version: n, is_active: active, created_by: null, created_at: "2026-12-01T10:00:00Z",
});

function experiment(fields: Partial<Experiment> = {}): Experiment {
  return {
    id: "x-1", name: "Shorter subject", notification_type: "ISSUE_CREATED", channel: "EMAIL", locale: "en", state: "RUNNING",
    goal: "CLICKED", window_hours: 72, min_sample_per_arm: 100, holdout_weight: 10,
    arms: [
      { name: "A", template_id: "t-3", template_version: 3, weight: 45, is_control: true },
      { name: "B", template_id: "t-2", template_version: 2, weight: 45, is_control: false },
    ],
    created_at: "2026-12-01T10:00:00Z", created_by: "u-admin", started_at: "2026-12-01T11:00:00Z", started_by: "u-admin",
    stopped_at: null, stopped_by: null, promoted_at: null, promoted_by: null, promoted_arm: null, ...fields,
  };
}

const arm = (name: string, fields: Partial<Schemas["ArmResult"]> = {}): Schemas["ArmResult"] => ({
  name, is_control: name === "A", weight: 45, sent: 130, delivered: 120, seen: 100, opened: 0, read: 80, clicked: 30, goal: 30,
  goal_rate: 0.25, interval: [0.18, 0.33], chance_to_beat_control: null, p_value: null, ...fields,
});

function results(fields: Partial<Results> = {}): Results {
  return {
    experiment_id: "x-1", state: "RUNNING", goal: "CLICKED", window_hours: 72, min_sample_per_arm: 100, enough_data: true,
    verdict: "arm B beats control (p = 0.012)", held_out: 25,
    arms: [arm("A"), arm("B", { clicked: 48, goal: 48, goal_rate: 0.4, interval: [0.32, 0.49], chance_to_beat_control: 0.994, p_value: 0.012 })],
    ...fields,
  };
}

afterEach(() => vi.unstubAllGlobals());

test("shows each arm's counts, goal rate with its interval, p-value and the chance to beat control as a bar", async () => {
  fakeFetch({
    [`GET ${E}`]: () => ({ json: [experiment()] }),
    [`GET ${E}/x-1/results`]: () => ({ json: results() }),
  });
  render(<ExperimentsPage />);
  const region = await screen.findByRole("region", { name: "Results of Shorter subject" });
  expect(region).toHaveTextContent("arm B beats control (p = 0.012)");
  expect(region).toHaveTextContent("25 held out");
  const b = within(region).getByRole("rowheader", { name: "B" }).closest("tr")!;
  expect(within(b).getAllByRole("cell").map((c) => c.textContent).slice(0, 8)).toEqual([
    "130", "120", "100", "80", "48", "40.0 %", "32.0 % – 49.0 %", "0.012",
  ]);
  const bar = within(b).getByRole("img", { name: "B: 99.4 % chance to beat control" });
  expect(bar.querySelector("rect.bar")).toHaveAttribute("width", String(Math.round(0.994 * 120)));
  const a = within(region).getByRole("rowheader", { name: "A (control)" }).closest("tr")!;
  expect(a).toHaveTextContent("control");
  expect(within(a).queryByRole("img")).toBeNull();
  const arms = screen.getByRole("list", { name: "Arms of Shorter subject" });
  expect(arms).toHaveTextContent("A v3 · 45 % · control");
  expect(arms).toHaveTextContent("B v2 · 45 %");
});

test("says \"not enough data\" when the API says so, without intervals, p-values or bars", async () => {
  fakeFetch({
    [`GET ${E}`]: () => ({ json: [experiment()] }),
    [`GET ${E}/x-1/results`]: () => ({
      json: results({
        enough_data: false, verdict: "not enough data: A has 12 of 100; B has 9 of 100 delivered",
        arms: [arm("A", { delivered: 12, interval: null }), arm("B", { delivered: 9, interval: null })],
      }),
    }),
  });
  render(<ExperimentsPage />);
  const region = await screen.findByRole("region", { name: "Results of Shorter subject" });
  expect(region).toHaveTextContent("not enough data: A has 12 of 100; B has 9 of 100 delivered");
  const b = within(region).getByRole("rowheader", { name: "B" }).closest("tr")!;
  expect(within(b).getAllByText("not enough data")).toHaveLength(3);
  expect(within(region).queryByRole("img")).toBeNull();
});

test("creates from versions of one template, with the API's 422 beside its field, then starts, stops and promotes", async () => {
  let stored: Experiment[] = [];
  const answers = [{ status: 422, json: { detail: "arms[1].template_id: version 1 of x is not a template of ISSUE_CREATED.EMAIL.en" } }];
  const { calls } = fakeFetch({
    [`GET ${E}`]: () => ({ json: stored }),
    [`GET ${T}`]: () => ({ json: [version(3, true)] }),
    [`GET ${T}/t-3/versions`]: () => ({ json: [version(1), version(3, true), version(2)] }),
    [`POST ${E}`]: () => {
      const refused = answers.shift();
      if (refused) return refused;
      stored = [experiment({ state: "DRAFT", started_at: null, started_by: null, holdout_weight: 10 })];
      return { status: 201, json: stored[0] };
    },
    [`POST ${E}/x-1/start`]: () => ({ json: experiment() }),
    [`POST ${E}/x-1/stop`]: () => ({ json: experiment({ state: "STOPPED", stopped_at: "2026-12-03T10:00:00Z" }) }),
    [`POST ${E}/x-1/promote`]: () => ({ json: experiment({ state: "PROMOTED", promoted_arm: "B", promoted_at: "2026-12-03T11:00:00Z", promoted_by: "u-admin" }) }),
    [`GET ${E}/x-1/results`]: () => ({ json: results() }),
  });
  const user = userEvent.setup();
  render(<ExperimentsPage />);
  await screen.findByText("No experiments yet.");
  await user.click(screen.getByRole("button", { name: "New experiment" }));

  const form = screen.getByRole("form", { name: "New experiment" });
  // The versions of ISSUE_CREATED EMAIL en, newest first; A the active (newest) one, B the next.
  await waitFor(() => expect(within(form).getByLabelText("Arm 2 version")).toHaveValue("t-2"));
  expect(within(form).getByLabelText("Arm 1 version")).toHaveValue("t-3");
  expect(within(within(form).getByLabelText("Arm 1 version")).getAllByRole("option").map((o) => o.textContent))
    .toEqual(["v3 (active): Subject v3", "v2: Subject v2", "v1: Subject v1"]);
  expect(calls.find((c) => c.path === T)!.query.toString()).toBe("notification_type=ISSUE_CREATED&channel=EMAIL&locale=en");

  await user.type(within(form).getByLabelText("Experiment name"), "Shorter subject");
  await user.clear(within(form).getByLabelText("Arm 1 weight (%)"));
  await user.type(within(form).getByLabelText("Arm 1 weight (%)"), "45");
  await user.clear(within(form).getByLabelText("Arm 2 weight (%)"));
  await user.type(within(form).getByLabelText("Arm 2 weight (%)"), "45");
  await user.clear(within(form).getByLabelText("Holdout (%)"));
  await user.type(within(form).getByLabelText("Holdout (%)"), "10");
  await user.selectOptions(within(form).getByLabelText("Goal"), "READ");
  await user.clear(within(form).getByLabelText("Window (hours)"));
  await user.type(within(form).getByLabelText("Window (hours)"), "48");
  expect(form).toHaveTextContent("Weights plus holdout: 100 %");
  await user.click(within(form).getByRole("button", { name: "Create experiment" }));

  const version2 = within(form).getByLabelText("Arm 2 version");
  await waitFor(() => expect(version2).toHaveAttribute("aria-invalid", "true"));
  expect(version2).toHaveAccessibleDescription(/is not a template of ISSUE_CREATED.EMAIL.en/);
  expect(calls.filter((c) => c.method === "POST" && c.path === E)[0].body).toEqual({
    name: "Shorter subject", notification_type: "ISSUE_CREATED", channel: "EMAIL", locale: "en", goal: "READ",
    window_hours: 48, min_sample_per_arm: 100, holdout_weight: 10,
    arms: [
      { name: "A", template_id: "t-3", weight: 45, is_control: true },
      { name: "B", template_id: "t-2", weight: 45, is_control: false },
    ],
  });

  await user.click(within(form).getByRole("button", { name: "Create experiment" }));
  const article = await screen.findByRole("article", { name: /Shorter subject/ });
  expect(screen.queryByRole("form", { name: "New experiment" })).toBeNull();

  await user.click(within(article).getByRole("button", { name: "Start Shorter subject" }));
  expect(await within(article).findByRole("status")).toHaveTextContent("Started Shorter subject");
  expect(article).toHaveAttribute("data-state", "RUNNING");
  await within(article).findByRole("region", { name: "Results of Shorter subject" });

  await user.click(within(article).getByRole("button", { name: "Stop Shorter subject" }));
  await waitFor(() => expect(article).toHaveAttribute("data-state", "STOPPED"));

  await user.click(within(article).getByRole("button", { name: "Promote B" }));
  expect(await within(article).findByRole("status")).toHaveTextContent("Promoted arm B: version 2 is the active template");
  expect(calls.find((c) => c.path === `${E}/x-1/promote`)!.body).toEqual({ arm: "B" });
  expect(article).toHaveAttribute("data-state", "PROMOTED");
  expect(within(article).queryByRole("button", { name: /Promote/ })).toBeNull();
  expect(screen.getByRole("list", { name: "Arms of Shorter subject" })).toHaveTextContent("B v2 · 45 % · promoted");
});

test("a refused transition is said; a field error from the API's `errors` goes beside its field", async () => {
  fakeFetch({
    [`GET ${E}`]: () => ({ json: [experiment({ state: "DRAFT" })] }),
    [`POST ${E}/x-1/start`]: () => ({ status: 409, json: { detail: "experiment Other is already running on ISSUE_CREATED EMAIL en; stop it first" } }),
    [`GET ${T}`]: () => ({ json: [version(1, true)] }),
    [`GET ${T}/t-1/versions`]: () => ({ json: [version(1, true)] }),
    [`POST ${E}`]: () => ({
      status: 422,
      json: { detail: "arms: Value error, the arms' weights (50 + 40) plus holdout_weight (0) sum to 90, not 100", errors: [{ field: "arms", location: "body", message: "the arms' weights (50 + 40) plus holdout_weight (0) sum to 90, not 100" }] },
    }),
  });
  const user = userEvent.setup();
  render(<ExperimentsPage />);
  const article = await screen.findByRole("article", { name: /Shorter subject/ });
  await user.click(within(article).getByRole("button", { name: "Start Shorter subject" }));
  expect(await within(article).findByRole("alert")).toHaveTextContent("already running");

  await user.click(screen.getByRole("button", { name: "New experiment" }));
  const form = screen.getByRole("form", { name: "New experiment" });
  await waitFor(() => expect(within(form).getByLabelText("Arm 2 version")).toHaveValue("t-1"));
  await user.clear(within(form).getByLabelText("Arm 2 weight (%)"));
  await user.type(within(form).getByLabelText("Arm 2 weight (%)"), "40");
  expect(form).toHaveTextContent("Weights plus holdout: 90 %");
  await user.click(within(form).getByRole("button", { name: "Create experiment" }));
  expect(await within(form).findByText("the arms' weights (50 + 40) plus holdout_weight (0) sum to 90, not 100")).toBeInTheDocument();
  expect(within(form).queryByRole("alert")).toBeNull();
});
