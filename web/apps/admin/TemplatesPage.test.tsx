// The console's Templates page against a fake API (fetch): the list and its filters, the editor's live
// preview, and the API's error for a draft that does not render or a save it refuses.
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, expect, test, vi } from "vitest";
import { fakeFetch } from "../../src/test/fakes";
import type { Schemas } from "./api";
import { TemplatesPage } from "./TemplatesPage";

const T = "/api/v1/notifications/templates";

function template(version: number, fields: Partial<Schemas["TemplateOut"]> = {}): Schemas["TemplateOut"] {
  return {
    id: `t-${version}`, name: "issue_assigned_email_en", display_name: "Issue assigned", description: null,
    notification_type: "ISSUE_ASSIGNED", channel: "EMAIL", locale: "en", subject_template: "{{ issue.id }} is yours",
    body_template: "Hello {{ recipient.name }}", html_template: null, version, is_active: version === 2,
    created_by: version === 1 ? null : "u-admin", created_at: `2026-01-0${version}T10:00:00Z`, ...fields,
  };
}

const sms = template(1, { id: "t-sms", name: "issue_assigned_sms_fr", channel: "SMS", locale: "fr", subject_template: null });

afterEach(() => vi.unstubAllGlobals());

test("lists the templates and asks again with the filters chosen", async () => {
  const { calls } = fakeFetch({
    [`GET ${T}`]: (_body, url) => ({ json: url.searchParams.get("locale") === "fr" ? [sms] : [template(2), sms] }),
  });
  const user = userEvent.setup();
  render(<TemplatesPage />);

  expect(await screen.findByRole("button", { name: "Edit issue_assigned_email_en" })).toBeInTheDocument();
  expect(screen.getByRole("button", { name: "Edit issue_assigned_sms_fr" })).toBeInTheDocument();
  await user.selectOptions(screen.getByLabelText("Locale"), "fr");
  await waitFor(() => expect(screen.queryByRole("button", { name: "Edit issue_assigned_email_en" })).toBeNull());
  await user.selectOptions(screen.getByLabelText("Channel"), "SMS");

  await waitFor(() => expect(Object.fromEntries(calls.at(-1)!.query)).toEqual({ locale: "fr", channel: "SMS" }));
  expect(Object.fromEntries(calls[0].query)).toEqual({});
  expect(screen.getByRole("button", { name: "Edit issue_assigned_sms_fr" })).toBeInTheDocument();
});

test("previews the draft, shows the API's error for one that does not render, and for a refused save", async () => {
  let refuseSave = true;
  const { calls } = fakeFetch({
    [`GET ${T}`]: () => ({ json: [template(2)] }),
    [`GET ${T}/t-2/versions`]: () => ({ json: [template(2), template(1, { body_template: "Hi {{ recipient.name }}" })] }),
    [`GET ${T}/t-3/versions`]: () => ({ json: [template(3, { body_template: "Bonjour" }), template(2, { is_active: false })] }),
    [`POST ${T}/preview`]: (body) => {
      const draft = (body as Schemas["TemplatePreviewRequest"]).template!;
      if (draft.body_template.includes("{{ broken")) {
        return { status: 422, json: { detail: "template error: body_template line 1: unexpected end of template" } };
      }
      return { json: { subject: "ISS-42 is yours", text: draft.body_template.replace("{{ recipient.name }}", "Rova"), html: null, context: {} } };
    },
    [`PUT ${T}/t-2`]: (body) => refuseSave
      ? { status: 422, json: {
        detail: "invalid request — body_template: String should have at least 1 character",
        errors: [{ field: "body_template", location: "body", message: "String should have at least 1 character" }],
      } }
      : { json: template(3, { id: "t-3", body_template: (body as Schemas["TemplateEdit"]).body_template! }) },
  });
  const user = userEvent.setup();
  render(<TemplatesPage />);
  await user.click(await screen.findByRole("button", { name: "Edit issue_assigned_email_en" }));

  // The stored version rendered, and the versions with what changed.
  expect(await screen.findByTestId("preview-text")).toHaveTextContent("Hello Rova");
  expect(screen.getByTestId("preview-subject")).toHaveTextContent("ISS-42 is yours");
  expect(calls.find((c) => c.path === `${T}/preview`)!.body).toEqual({
    template: {
      notification_type: "ISSUE_ASSIGNED", channel: "EMAIL", locale: "en", subject_template: "{{ issue.id }} is yours",
      body_template: "Hello {{ recipient.name }}", html_template: null,
    },
  });
  const versions = within(screen.getByRole("heading", { name: "Versions" }).nextElementSibling as HTMLElement);
  expect(versions.getAllByRole("row").map((r) => r.firstChild?.textContent)).toEqual(["Version", "v2", "v1"]);
  expect(versions.getByText("- Hi {{ recipient.name }}")).toBeInTheDocument();
  expect(versions.getByText("+ Hello {{ recipient.name }}")).toBeInTheDocument();

  // A draft that does not render: the API's message, next to the fields.
  const text = screen.getByLabelText("Text");
  await user.type(text, " {{{{ broken");
  await waitFor(() => expect(screen.getByRole("alert")).toHaveTextContent("template error: body_template line 1: unexpected end of template"));
  expect(text).toHaveAccessibleDescription("template error: body_template line 1: unexpected end of template");

  // A save the API refuses: its field error is shown, nothing is said to be saved.
  await user.clear(text);
  await user.click(screen.getByRole("button", { name: "Save" }));
  await waitFor(() => expect(screen.getByRole("alert")).toHaveTextContent("body_template: String should have at least 1 character"));
  // …and stays when the (debounced) preview of the empty draft answers after it.
  await waitFor(() => expect(screen.getByTestId("preview-text").textContent).toBe(""));
  expect(screen.getByRole("alert")).toHaveTextContent("body_template: String should have at least 1 character");
  expect(screen.getByRole("status")).toHaveTextContent("");
  expect(calls.filter((c) => c.method === "PUT").at(-1)!.body).toEqual({ subject_template: "{{ issue.id }} is yours", body_template: "", html_template: null });

  // Saved: the new version, and the error gone.
  refuseSave = false;
  await user.type(text, "Bonjour");
  await user.click(screen.getByRole("button", { name: "Save" }));
  expect(await screen.findByRole("status")).toHaveTextContent("Saved as version 3");
  expect(screen.getByRole("heading", { level: 1 })).toHaveTextContent("issue_assigned_email_en v3");
  expect(screen.getByRole("alert")).toBeEmptyDOMElement();
  // The versions of the saved one.
  await waitFor(() => expect(versions.getAllByRole("row").map((r) => r.firstChild?.textContent)).toEqual(["Version", "v3", "v2"]));
});
