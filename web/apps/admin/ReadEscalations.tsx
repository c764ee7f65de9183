// Policies page, "Escalation on unread": per notification type, "if not read within N minutes, also send on
// CHANNEL" (GET/PUT /api/v1/notifications/read-escalations/{type}). One line per type; the API's validation
// message beside its field, as the escalation-policy editor does.
import { FormEvent, useEffect, useState } from "react";
import { api, ApiError, CHANNELS, Schemas } from "./api";

export type ReadEscalation = Schemas["ReadEscalationOut"];
type Channel = ReadEscalation["channel"];

const R = "/api/v1/notifications/read-escalations";
const FIELDS = ["enabled", "after_minutes", "channel"];

export function ReadEscalations() {
  const [rules, setRules] = useState<ReadEscalation[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api.request<ReadEscalation[]>("GET", R).then(
      (loaded) => { setRules(loaded); setError(null); },
      (failure) => setError((failure as ApiError).detail),
    );
  }, []);

  return (
    <section className="read-escalations" aria-labelledby="read-escalations-title">
      <h2 id="read-escalations-title">Escalation on unread</h2>
      <p className="note">
        Per type: if a person has neither read nor clicked a notification within the minutes given, it also goes
        out on the channel chosen (their preferences, quiet hours unless critical, and the rate cap apply). A
        change applies to notifications planned from then on.
      </p>
      {error && <p className="error" role="alert">{error}</p>}
      {rules.map((rule) => <ReadEscalationLine key={rule.notification_type} rule={rule} />)}
    </section>
  );
}

function ReadEscalationLine({ rule }: { rule: ReadEscalation }) {
  const [enabled, setEnabled] = useState(rule.enabled);
  const [minutes, setMinutes] = useState(String(rule.after_minutes));
  const [channel, setChannel] = useState<Channel>(rule.channel);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const type = rule.notification_type;
  const id = `unread-${type.toLowerCase()}`;

  const fieldError = (field: string) => failure?.errors.find((e) => e.field === field)?.message;
  const problem = (field: string) => {
    const message = fieldError(field);
    return message ? <span id={`${id}-${field}-error`} className="error field-error">{message}</span> : null;
  };
  const describedBy = (field: string) => (fieldError(field) ? `${id}-${field}-error` : undefined);
  // Anything not about one of the line's fields (or a refusal naming none) is said after the Save button.
  const general = !failure ? null
    : failure.errors.length === 0 || !failure.errors.every((e) => FIELDS.includes(e.field)) ? failure.detail
    : null;

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaving(true);
    try {
      const stored = await api.request<ReadEscalation>("PUT", `${R}/${type}`, {
        enabled,
        after_minutes: minutes.trim() === "" ? null : Number(minutes),
        channel,
      });
      setEnabled(stored.enabled);
      setMinutes(String(stored.after_minutes));
      setChannel(stored.channel);
      setFailure(null);
      setSaved(`Saved ${type}: applies to notifications planned from now on`);
    } catch (caught) {
      setFailure(caught as ApiError);
      setSaved(null);
    } finally {
      setSaving(false);
    }
  };

  return (
    <form className="read-escalation" aria-label={`Escalation on unread, ${type}`} onSubmit={save} noValidate>
      <span className="type">{type}</span>
      <label>
        <input type="checkbox" role="switch" checked={enabled} onChange={(e) => setEnabled(e.target.checked)}
          aria-label={`Escalate ${type} when unread`} aria-describedby={describedBy("enabled")} />
        {enabled ? "on" : "off"}
      </label>
      {problem("enabled")}
      <label htmlFor={`${id}-minutes`}>unread after (minutes)</label>
      <input id={`${id}-minutes`} type="number" min={1} value={minutes} onChange={(e) => setMinutes(e.target.value)}
        aria-label={`${type} unread after (minutes)`}
        aria-invalid={Boolean(fieldError("after_minutes"))} aria-describedby={describedBy("after_minutes")} />
      {problem("after_minutes")}
      <label htmlFor={`${id}-channel`}>also send on</label>
      <select id={`${id}-channel`} value={channel} onChange={(e) => setChannel(e.target.value as Channel)}
        aria-label={`${type} also send on`}
        aria-invalid={Boolean(fieldError("channel"))} aria-describedby={describedBy("channel")}>
        {CHANNELS.map((c) => <option key={c} value={c}>{c}</option>)}
      </select>
      {problem("channel")}
      <button type="submit" disabled={saving}>Save {type}</button>
      {general && <span className="error" role="alert">{general}</span>}
      <span role="status">{saved}</span>
    </form>
  );
}
