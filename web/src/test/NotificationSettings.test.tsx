import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { PreferencesUpdate } from "../api";
import { NotificationSettings, NotiflowProvider } from "../index";
import { fakeFetch, settings } from "./fakes";

const PREFS = "/api/v1/notifications/preferences";

function renderSettings(locale = "en") {
  return render(
    <NotiflowProvider apiUrl="" token="tok" locale={locale}>
      <NotificationSettings />
    </NotiflowProvider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("the settings grid", () => {
  it("has a checkbox per type × channel, named with an em dash, and saves a toggle at once", async () => {
    const stored = settings();
    const { calls } = fakeFetch({
      [`GET ${PREFS}`]: () => ({ json: stored }),
      [`PUT ${PREFS}`]: (body) => {
        const change = (body as PreferencesUpdate).preferences![0];
        const cell = stored.preferences.find((p) => p.notification_type === change.notification_type && p.channel === change.channel)!;
        cell.enabled = change.enabled ?? cell.enabled;
        return { json: stored };
      },
    });
    const user = userEvent.setup();
    renderSettings();
    const box = await screen.findByRole("checkbox", { name: "Issue assigned — Email" });
    expect(screen.getByRole("checkbox", { name: "Issue assigned — In-app" })).toBeChecked();
    expect(screen.getByRole("checkbox", { name: "Issue assigned — SMS" })).not.toBeChecked();
    expect(screen.getAllByRole("checkbox", { name: / — (Email|In-app|SMS)$/ })).toHaveLength(12 * 3);
    expect(screen.queryByRole("button", { name: /save/i })).toBeNull();
    await user.click(box);
    await waitFor(() => expect(box).not.toBeChecked());
    const put = calls.find((c) => c.method === "PUT")!;
    expect(put.body).toEqual({ preferences: [{ notification_type: "ISSUE_ASSIGNED", channel: "EMAIL", enabled: false, frequency: "IMMEDIATE", digest_hour: null }] });
  });

  it("uses the French labels", async () => {
    fakeFetch({ [`GET ${PREFS}`]: () => ({ json: settings() }) });
    renderSettings("fr");
    expect(await screen.findByRole("checkbox", { name: "Ticket assigné — E-mail" })).toBeChecked();
    expect(screen.getByRole("checkbox", { name: "Ticket assigné — Dans l'application" })).toBeChecked();
    expect(screen.getByRole("checkbox", { name: "Ticket assigné — SMS" })).not.toBeChecked();
  });

  it("shows the API's refusal next to the row and puts the switch back", async () => {
    fakeFetch({
      [`GET ${PREFS}`]: () => ({ json: settings() }),
      [`PUT ${PREFS}`]: () => ({ status: 422, json: { detail: "preferences[0]: SMS is not available on this server" } }),
    });
    const user = userEvent.setup();
    renderSettings();
    const sms = await screen.findByRole("checkbox", { name: "Issue assigned — SMS" });
    await user.click(sms);
    const row = sms.closest("tr")!;
    expect(await within(row).findByRole("alert")).toHaveTextContent("SMS is not available on this server");
    expect(sms).not.toBeChecked();
  });

  it("shows a validation message next to the time zone field", async () => {
    fakeFetch({
      [`GET ${PREFS}`]: () => ({ json: settings() }),
      [`PUT ${PREFS}`]: () => ({ status: 422, json: { detail: "invalid request", errors: [{ field: "timezone", location: "body", message: "unknown time zone 'Mars/Base'; use an IANA name" }] } }),
    });
    const user = userEvent.setup();
    renderSettings();
    const zone = await screen.findByRole("combobox", { name: /Time zone/ });
    await user.clear(zone);
    await user.type(zone, "Mars/Base");
    await user.tab();
    expect(await screen.findByText(/unknown time zone 'Mars\/Base'/)).toBeInTheDocument();
  });
});

describe("critical types", () => {
  it("are locked on, with the reason beside them", async () => {
    const { calls } = fakeFetch({ [`GET ${PREFS}`]: () => ({ json: settings() }) });
    const user = userEvent.setup();
    renderSettings();
    const email = await screen.findByRole("checkbox", { name: "System error spike — Email" });
    expect(email).toBeDisabled();
    expect(email).toBeChecked();
    expect(screen.getByRole("checkbox", { name: "Automatically detected issue — In-app" })).toBeDisabled();
    expect(email).toHaveAccessibleDescription(/SYSTEM_ERROR_SPIKE is critical/);
    await user.click(email);
    expect(email).toBeChecked();
    expect(calls.filter((c) => c.method === "PUT")).toHaveLength(0);
  });
});
