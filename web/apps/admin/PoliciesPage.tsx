import { FormEvent, useEffect, useState } from "react";
import { api, ApiError, Schemas, when } from "./api";
import { ReadEscalations } from "./ReadEscalations";

export type Policy = Schemas["PolicyOut"];
type Audience = Policy["tiers"][number]["audience"];

/** The form keeps what is typed (strings), so a half-typed number is not lost; the API judges it. */
interface Draft {
  due_minutes: string;
  tiers: { after_minutes: string; audience: Audience }[];
  repeat_last: string;
  repeat_every_minutes: string;
}

const P = "/api/v1/notifications/escalation-policies";
const MAX_TIERS = 10;
const AUDIENCES: Record<string, string> = { assignee: "assignee (admins if unassigned)", admins: "all admins", on_call: "on-call admins" };

function draftOf(policy: Policy): Draft {
  return {
    due_minutes: String(policy.due_minutes),
    tiers: policy.tiers.map((t) => ({ after_minutes: String(t.after_minutes), audience: t.audience })),
    repeat_last: String(policy.repeat_last),
    repeat_every_minutes: String(policy.repeat_every_minutes),
  };
}

/** A typed number as JSON: empty stays null so the API names the field instead of guessing. */
function number(text: string): number | null {
  return text.trim() === "" ? null : Number(text);
}

function duration(minutes: number): string {
  if (minutes % (24 * 60) === 0) return `${minutes / (24 * 60)} d`;
  if (minutes % 60 === 0) return `${minutes / 60} h`;
  return `${minutes} min`;
}

export function PoliciesPage() {
  const [policies, setPolicies] = useState<Policy[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api.request<Policy[]>("GET", P).then(
      (loaded) => { setPolicies(loaded); setError(null); },
      (failure) => setError((failure as ApiError).detail),
    );
  }, []);

  return (
    <section>
      <h1>Policies</h1>
      <p className="note">
        Per priority: how long an issue may stay open (from its creation or reopening), then who hears and when,
        the last tier repeating. The worker reads a change within 5 s; it applies to issues whose SLA is armed or
        re-armed afterwards (new issues, priority changes, reopenings), not to timers already running.
      </p>
      {error && <p className="error" role="alert">{error}</p>}
      {policies.map((policy) => (
        <PolicyEditor key={policy.priority} policy={policy}
          onSaved={(saved) => setPolicies((was) => was.map((p) => (p.priority === saved.priority ? saved : p)))} />
      ))}
      <ReadEscalations />
    </section>
  );
}

function PolicyEditor({ policy, onSaved }: { policy: Policy; onSaved: (saved: Policy) => void }) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(policy));
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const id = policy.priority.toLowerCase();

  const fieldError = (field: string) => failure?.errors.find((e) => e.field === field)?.message;
  const problem = (field: string) => {
    const message = fieldError(field);
    return message ? <span id={`${id}-${field}-error`} className="error field-error">{message}</span> : null;
  };
  const describedBy = (field: string) => (fieldError(field) ? `${id}-${field}-error` : undefined);

  const setTier = (index: number, change: Partial<Draft["tiers"][number]>) =>
    setDraft({ ...draft, tiers: draft.tiers.map((t, i) => (i === index ? { ...t, ...change } : t)) });

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaving(true);
    try {
      const stored = await api.request<Policy>("PUT", `${P}/${policy.priority}`, {
        due_minutes: number(draft.due_minutes),
        tiers: draft.tiers.map((t) => ({ after_minutes: number(t.after_minutes), audience: t.audience })),
        repeat_last: number(draft.repeat_last),
        repeat_every_minutes: number(draft.repeat_every_minutes),
      });
      onSaved(stored);
      setDraft(draftOf(stored));
      setFailure(null);
      setSaved(`Saved ${policy.priority}: applies to issues whose SLA is armed from now on`);
    } catch (caught) {
      setFailure(caught as ApiError);
      setSaved(null);
    } finally {
      setSaving(false);
    }
  };

  // A field the form shows its message beside; anything else (or no field at all) is said in the summary.
  const beside = (field: string) =>
    ["due_minutes", "tiers", "repeat_last", "repeat_every_minutes"].includes(field) ||
    /^tiers\[\d+\]\.(after_minutes|audience)$/.test(field);
  const general = !failure ? null
    : failure.errors.length === 0 || !failure.errors.every((e) => beside(e.field)) ? failure.detail
    : "Not saved: correct the fields marked below.";

  return (
    <form className="policy" aria-labelledby={`${id}-title`} onSubmit={save} noValidate>
      <h2 id={`${id}-title`}>{policy.priority}</h2>
      <div className="policy-grid">
        <div className="fields">
          <label htmlFor={`${id}-due`}>Due after (minutes)</label>
          <input id={`${id}-due`} type="number" min={1} value={draft.due_minutes}
            onChange={(e) => setDraft({ ...draft, due_minutes: e.target.value })}
            aria-invalid={Boolean(fieldError("due_minutes"))} aria-describedby={describedBy("due_minutes")} />
          {problem("due_minutes")}

          <fieldset>
            <legend>Tiers (after the due time)</legend>
            {draft.tiers.length === 0 && <p className="note">No tiers: only the assignee hears, at the due time.</p>}
            {draft.tiers.map((tier, index) => (
              <div key={index} className="tier">
                <label htmlFor={`${id}-tier-${index}-after`}>Tier {index + 1} after (minutes)</label>
                <input id={`${id}-tier-${index}-after`} type="number" min={1} value={tier.after_minutes}
                  onChange={(e) => setTier(index, { after_minutes: e.target.value })}
                  aria-invalid={Boolean(fieldError(`tiers[${index}].after_minutes`))}
                  aria-describedby={describedBy(`tiers[${index}].after_minutes`)} />
                <label htmlFor={`${id}-tier-${index}-audience`}>Tier {index + 1} audience</label>
                <select id={`${id}-tier-${index}-audience`} value={tier.audience}
                  onChange={(e) => setTier(index, { audience: e.target.value as Audience })}
                  aria-describedby={describedBy(`tiers[${index}].audience`)}>
                  <option value="admins">all admins</option>
                  <option value="on_call">on-call admins</option>
                </select>
                <button type="button" className="quiet"
                  onClick={() => setDraft({ ...draft, tiers: draft.tiers.filter((_, i) => i !== index) })}>
                  Remove tier {index + 1}
                </button>
                {problem(`tiers[${index}].after_minutes`)}
                {problem(`tiers[${index}].audience`)}
              </div>
            ))}
            <button type="button" className="quiet" disabled={draft.tiers.length >= MAX_TIERS}
              onClick={() => {
                const last = draft.tiers[draft.tiers.length - 1];
                const after = last ? String((Number(last.after_minutes) || 0) + 120) : "120";
                setDraft({ ...draft, tiers: [...draft.tiers, { after_minutes: after, audience: "on_call" }] });
              }}>
              Add tier
            </button>
            {problem("tiers")}
          </fieldset>

          <label htmlFor={`${id}-repeat-last`}>Repeat the last tier (times)</label>
          <input id={`${id}-repeat-last`} type="number" min={0} value={draft.repeat_last}
            onChange={(e) => setDraft({ ...draft, repeat_last: e.target.value })}
            aria-invalid={Boolean(fieldError("repeat_last"))} aria-describedby={describedBy("repeat_last")} />
          {problem("repeat_last")}
          <label htmlFor={`${id}-repeat-every`}>Repeat every (minutes)</label>
          <input id={`${id}-repeat-every`} type="number" min={1} value={draft.repeat_every_minutes}
            onChange={(e) => setDraft({ ...draft, repeat_every_minutes: e.target.value })}
            aria-invalid={Boolean(fieldError("repeat_every_minutes"))} aria-describedby={describedBy("repeat_every_minutes")} />
          {problem("repeat_every_minutes")}

          {general && <p className="error" role="alert">{general}</p>}
          <button type="submit" disabled={saving}>Save {policy.priority}</button>
          <p role="status">{saved}</p>
        </div>
        <div className="preview" role="region" aria-label={`Next firings, ${policy.priority}`}>
          <h3>Next firings for an issue created now</h3>
          <p className="note">Created {when(policy.sample.created_at)}, due {when(policy.sample.due_at)}
            {" "}({duration(policy.due_minutes)}), never resolved:</p>
          <table>
            <thead><tr><th>When</th><th>After creation</th><th>Who</th></tr></thead>
            <tbody>
              {policy.sample.firings.map((f) => (
                <tr key={`${f.tier}-${f.repeat}`}>
                  <td>{when(f.at)}</td>
                  <td>{duration(Math.round((Date.parse(f.at) - Date.parse(policy.sample.created_at)) / 60000))}</td>
                  <td>
                    {f.tier === 0 ? "due: " : `tier ${f.tier}${f.repeat ? `, repeat ${f.repeat}` : ""}: `}
                    {AUDIENCES[f.audience]}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
    </form>
  );
}
