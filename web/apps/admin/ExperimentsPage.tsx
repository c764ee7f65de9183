import { FormEvent, useEffect, useState } from "react";
import { api, ApiError, Channel, NotificationType, Schemas, TYPES, when } from "./api";

type Experiment = Schemas["ExperimentOut"];
type ExperimentIn = Schemas["ExperimentIn"];
type Results = Schemas["ExperimentResults"];
type ArmResult = Schemas["ArmResult"];
type Template = Schemas["TemplateOut"];

const E = "/api/v1/notifications/experiments";
const T = "/api/v1/notifications/templates";
const ARM_NAMES = ["A", "B", "C", "D", "E"];
const MAX_ARMS = 5;

/** The form keeps what is typed (strings), so a half-typed number is not lost; the API judges it. */
interface ArmDraft { name: string; template_id: string; weight: string }
interface Draft {
  name: string; notification_type: string; channel: string; locale: string; goal: "READ" | "CLICKED";
  window_hours: string; min_sample_per_arm: string; holdout_weight: string; control: number; arms: ArmDraft[];
}

const NEW: Draft = {
  name: "", notification_type: "ISSUE_CREATED", channel: "EMAIL", locale: "en", goal: "CLICKED",
  window_hours: "72", min_sample_per_arm: "100", holdout_weight: "0", control: 0,
  arms: [{ name: "A", template_id: "", weight: "50" }, { name: "B", template_id: "", weight: "50" }],
};

const number = (text: string): number | null => (text.trim() === "" ? null : Number(text));
const percent = (rate: number | null | undefined, digits = 1) => (rate == null ? "—" : `${(rate * 100).toFixed(digits)} %`);

/** The field a refusal names: FastAPI's `errors`, or a sentence of the API starting with "field: …". */
function messageFor(failure: ApiError | null, field: string): string | undefined {
  if (!failure) return undefined;
  const named = failure.errors.find((e) => e.field === field);
  if (named) return named.message;
  return failure.detail.startsWith(`${field}: `) ? failure.detail : undefined;
}

export function ExperimentsPage() {
  const [experiments, setExperiments] = useState<Experiment[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    let current = true;
    api.request<Experiment[]>("GET", E).then(
      (loaded) => { if (current) { setExperiments(loaded); setError(null); } },
      (failure) => { if (current) setError((failure as ApiError).detail); },
    );
    return () => { current = false; };
  }, [reloads]);

  const replace = (changed: Experiment) => setExperiments((was) => was.map((e) => (e.id === changed.id ? changed : e)));

  return (
    <section>
      <h1>Experiments</h1>
      <p className="note">
        A/B variants of one template (type, channel, locale): 2 to 5 of its versions, each with a weight in percent,
        one of them the control, and an optional holdout that receives nothing. A recipient stays in one arm. Results
        count delivered rows reaching the goal (read or clicked) within the window; promoting an arm makes its
        version the active template.
      </p>
      {error && <p className="error" role="alert">{error}</p>}
      {creating
        ? <ExperimentForm onCancel={() => setCreating(false)} onCreated={() => { setCreating(false); setReloads((n) => n + 1); }} />
        : <button type="button" onClick={() => setCreating(true)}>New experiment</button>}
      {experiments.length === 0 && !error && <p>No experiments yet.</p>}
      {experiments.map((experiment) => <ExperimentView key={experiment.id} experiment={experiment} onChanged={replace} />)}
    </section>
  );
}

function ExperimentView({ experiment, onChanged }: { experiment: Experiment; onChanged: (changed: Experiment) => void }) {
  const [results, setResults] = useState<Results | null>(null);
  // Results shown once it has started (a draft has none), unless the admin chose otherwise.
  const [toggled, setToggled] = useState<boolean | null>(null);
  const showing = toggled ?? experiment.state !== "DRAFT";
  const [message, setMessage] = useState<{ text: string; failed: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const id = `experiment-${experiment.id}`;

  useEffect(() => {
    if (!showing) return;
    let current = true;
    api.request<Results>("GET", `${E}/${experiment.id}/results`).then(
      (loaded) => { if (current) setResults(loaded); },
      (failure) => { if (current) setMessage({ text: (failure as ApiError).detail, failed: true }); },
    );
    return () => { current = false; };
  }, [showing, experiment.id, experiment.state]);

  const act = async (path: string, done: (changed: Experiment) => string, body?: unknown) => {
    setBusy(true);
    try {
      const changed = await api.request<Experiment>("POST", `${E}/${experiment.id}/${path}`, body);
      onChanged(changed);
      setMessage({ text: done(changed), failed: false });
    } catch (failure) {
      setMessage({ text: (failure as ApiError).detail, failed: true });
    } finally {
      setBusy(false);
    }
  };

  const promotable = experiment.state === "RUNNING" || experiment.state === "STOPPED";
  return (
    <article className="experiment" aria-labelledby={`${id}-title`} data-state={experiment.state}>
      <h2 id={`${id}-title`}>{experiment.name} <span className={`status ${experiment.state.toLowerCase()}`}>{experiment.state}</span></h2>
      <p className="note">
        {experiment.notification_type} · {experiment.channel} · {experiment.locale} · goal {experiment.goal} within{" "}
        {experiment.window_hours} h · at least {experiment.min_sample_per_arm} delivered per arm
        {experiment.holdout_weight > 0 && ` · holdout ${experiment.holdout_weight} %`}
        <br />
        created {when(experiment.created_at)}{experiment.created_by && ` by ${experiment.created_by}`}
        {experiment.started_at && `, started ${when(experiment.started_at)}`}
        {experiment.stopped_at && `, stopped ${when(experiment.stopped_at)}`}
        {experiment.promoted_at && `, arm ${experiment.promoted_arm} promoted ${when(experiment.promoted_at)}${experiment.promoted_by ? ` by ${experiment.promoted_by}` : ""}`}
      </p>
      <ul className="arms" aria-label={`Arms of ${experiment.name}`}>
        {experiment.arms.map((arm) => (
          <li key={arm.name}>
            <strong>{arm.name}</strong> v{arm.template_version} · {arm.weight} %{arm.is_control && " · control"}
            {experiment.promoted_arm === arm.name && " · promoted"}
          </li>
        ))}
      </ul>
      <div className="actions">
        {experiment.state === "DRAFT" && (
          <button type="button" disabled={busy} onClick={() => void act("start", () => `Started ${experiment.name}`)}>Start {experiment.name}</button>
        )}
        {experiment.state === "RUNNING" && (
          <button type="button" disabled={busy} onClick={() => void act("stop", () => `Stopped ${experiment.name}`)}>Stop {experiment.name}</button>
        )}
        <button type="button" className="quiet" aria-expanded={showing} onClick={() => setToggled(!showing)}>
          {showing ? "Hide results" : "Show results"}
        </button>
      </div>
      {message && <p className={message.failed ? "error" : undefined} role={message.failed ? "alert" : "status"}>{message.text}</p>}
      {showing && results && (
        <ResultsTable experiment={experiment} results={results} busy={busy}
          onPromote={promotable ? (arm) => void act("promote", (changed) => `Promoted arm ${arm}: version ${changed.arms.find((a) => a.name === arm)?.template_version ?? "?"} is the active template`, { arm }) : null} />
      )}
    </article>
  );
}

function ResultsTable({ experiment, results, busy, onPromote }: {
  experiment: Experiment; results: Results; busy: boolean; onPromote: ((arm: string) => void) | null;
}) {
  const notEnough = !results.enough_data;
  return (
    <div role="region" aria-label={`Results of ${experiment.name}`}>
      <p className={notEnough ? "note" : "verdict"}><strong>{results.verdict}</strong>
        {results.held_out > 0 && <> · {results.held_out} held out (nothing sent)</>}</p>
      <table>
        <thead>
          <tr>
            <th>Arm</th><th>Sent</th><th>Delivered</th><th>Seen</th><th>Read</th><th>Clicked</th>
            <th>Goal rate ({results.goal.toLowerCase()})</th><th>95 % interval</th><th>p-value</th><th>Chance to beat control</th><th />
          </tr>
        </thead>
        <tbody>
          {results.arms.map((arm) => (
            <tr key={arm.name} data-arm={arm.name}>
              <th scope="row">{arm.name}{arm.is_control && <small> (control)</small>}</th>
              <td>{arm.sent}</td><td>{arm.delivered}</td><td>{arm.seen}</td><td>{arm.read}</td><td>{arm.clicked}</td>
              <td>{percent(arm.goal_rate)}</td>
              <td>{arm.interval ? `${percent(arm.interval[0])} – ${percent(arm.interval[1])}` : notEnough ? "not enough data" : "—"}</td>
              <td>{arm.is_control ? "—" : arm.p_value != null ? arm.p_value.toFixed(3) : notEnough ? "not enough data" : "—"}</td>
              <td>{arm.is_control ? "control" : <ChanceBar arm={arm} notEnough={notEnough} />}</td>
              <td>
                {onPromote && (
                  <button type="button" disabled={busy} onClick={() => onPromote(arm.name)}>Promote {arm.name}</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The chance to beat control as a bar (plain SVG); a line at 50 %, the bar green above 95 %, red below 5 %. */
function ChanceBar({ arm, notEnough }: { arm: ArmResult; notEnough: boolean }) {
  const chance = arm.chance_to_beat_control;
  if (chance == null) return <span className="note">{notEnough ? "not enough data" : "—"}</span>;
  const width = 120;
  const tone = chance >= 0.95 ? "#1a7f37" : chance <= 0.05 ? "#b3261e" : "#0b5cad";
  return (
    <span className="chance">
      <svg width={width} height={12} viewBox={`0 0 ${width} 12`} role="img" aria-label={`${arm.name}: ${percent(chance)} chance to beat control`}>
        <rect x={0} y={0} width={width} height={12} rx={2} fill="#eef1f4" />
        <rect className="bar" x={0} y={0} width={Math.round(chance * width)} height={12} rx={2} fill={tone} />
        <line x1={width / 2} x2={width / 2} y1={0} y2={12} stroke="#59636e" strokeDasharray="2 2" />
      </svg>{" "}
      {percent(chance)}
    </span>
  );
}

function ExperimentForm({ onCreated, onCancel }: { onCreated: (created: Experiment) => void; onCancel: () => void }) {
  const [draft, setDraft] = useState<Draft>(NEW);
  const [versions, setVersions] = useState<Template[]>([]);
  const [versionsProblem, setVersionsProblem] = useState<string | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [saving, setSaving] = useState(false);
  const { notification_type, channel, locale } = draft;

  // The versions of the template chosen (type, channel, locale): its active one's name, then every version.
  useEffect(() => {
    let current = true;
    const target = new URLSearchParams({ notification_type, channel, locale });
    api.request<Template[]>("GET", `${T}?${target}`)
      .then((active) => {
        if (active.length === 0) throw new ApiError(404, `no active template for ${notification_type} ${channel} ${locale}`);
        return api.request<Template[]>("GET", `${T}/${active[0].id}/versions`);
      })
      .then(
        (loaded) => {
          if (!current) return;
          const sorted = [...loaded].sort((a, b) => b.version - a.version);
          setVersions(sorted);
          setVersionsProblem(null);
          // Default: the active version as control (A), the newest other one as B…
          setDraft((was) => ({
            ...was,
            arms: was.arms.map((arm, i) => ({ ...arm, template_id: sorted[Math.min(i, sorted.length - 1)]?.id ?? "" })),
          }));
        },
        (failed) => {
          if (!current) return;
          setVersions([]);
          setVersionsProblem((failed as ApiError).detail);
        },
      );
    return () => { current = false; };
  }, [notification_type, channel, locale]);

  const setArm = (index: number, change: Partial<ArmDraft>) =>
    setDraft({ ...draft, arms: draft.arms.map((a, i) => (i === index ? { ...a, ...change } : a)) });

  const problem = (field: string) => {
    const message = messageFor(failure, field);
    return message ? <span id={`new-${field}-error`} className="error field-error">{message}</span> : null;
  };
  const aria = (field: string) => ({
    "aria-invalid": Boolean(messageFor(failure, field)), "aria-describedby": messageFor(failure, field) ? `new-${field}-error` : undefined,
  });
  const FIELDS = ["name", "window_hours", "min_sample_per_arm", "holdout_weight", "arms",
    ...draft.arms.flatMap((_, i) => [`arms[${i}].name`, `arms[${i}].template_id`, `arms[${i}].weight`])];
  const general = failure && !FIELDS.some((f) => messageFor(failure, f)) ? failure.detail : null;
  const total = draft.arms.reduce((sum, a) => sum + (Number(a.weight) || 0), 0) + (Number(draft.holdout_weight) || 0);

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaving(true);
    const body = {
      name: draft.name.trim(), notification_type: draft.notification_type as NotificationType, channel: draft.channel as Channel,
      locale: draft.locale, goal: draft.goal, window_hours: number(draft.window_hours),
      min_sample_per_arm: number(draft.min_sample_per_arm), holdout_weight: number(draft.holdout_weight) ?? 0,
      arms: draft.arms.map((a, i) => ({ name: a.name.trim(), template_id: a.template_id, weight: number(a.weight), is_control: i === draft.control })),
    } as ExperimentIn;
    try {
      const created = await api.request<Experiment>("POST", E, body);
      setFailure(null);
      onCreated(created);
    } catch (caught) {
      setFailure(caught as ApiError);
    } finally {
      setSaving(false);
    }
  };

  return (
    <form className="experiment-form" aria-label="New experiment" onSubmit={save} noValidate>
      <h2>New experiment</h2>
      <div className="filters">
        <label>Name<input aria-label="Experiment name" value={draft.name} size={30} {...aria("name")}
          onChange={(e) => setDraft({ ...draft, name: e.target.value })} />{problem("name")}</label>
        <label>Type<select aria-label="Type" value={draft.notification_type}
          onChange={(e) => setDraft({ ...draft, notification_type: e.target.value })}>{TYPES.map((t) => <option key={t}>{t}</option>)}</select></label>
        <label>Channel<select aria-label="Channel" value={draft.channel}
          onChange={(e) => setDraft({ ...draft, channel: e.target.value })}>{["EMAIL", "IN_APP", "SMS"].map((c) => <option key={c}>{c}</option>)}</select></label>
        <label>Locale<select aria-label="Locale" value={draft.locale}
          onChange={(e) => setDraft({ ...draft, locale: e.target.value })}><option>en</option><option>fr</option></select></label>
      </div>
      {versionsProblem && <p className="error">{versionsProblem}</p>}
      <fieldset>
        <legend>Arms (2 to {MAX_ARMS}; weights plus holdout make 100 %)</legend>
        {draft.arms.map((arm, index) => (
          <div key={index} className="tier">
            <label htmlFor={`arm-${index}-name`}>Arm {index + 1} name</label>
            <input id={`arm-${index}-name`} value={arm.name} size={6} {...aria(`arms[${index}].name`)}
              onChange={(e) => setArm(index, { name: e.target.value })} />
            <label htmlFor={`arm-${index}-version`}>Arm {index + 1} version</label>
            <select id={`arm-${index}-version`} value={arm.template_id} {...aria(`arms[${index}].template_id`)}
              onChange={(e) => setArm(index, { template_id: e.target.value })}>
              {versions.length === 0 && <option value="">—</option>}
              {versions.map((v) => (
                <option key={v.id} value={v.id}>v{v.version}{v.is_active ? " (active)" : ""}{v.subject_template ? `: ${v.subject_template.slice(0, 40)}` : ""}</option>
              ))}
            </select>
            <label htmlFor={`arm-${index}-weight`}>Arm {index + 1} weight (%)</label>
            <input id={`arm-${index}-weight`} type="number" min={1} max={100} value={arm.weight} {...aria(`arms[${index}].weight`)}
              onChange={(e) => setArm(index, { weight: e.target.value })} />
            <label><input type="radio" name="control" checked={draft.control === index}
              onChange={() => setDraft({ ...draft, control: index })} /> Arm {index + 1} is the control</label>
            {draft.arms.length > 2 && (
              <button type="button" className="quiet" onClick={() => setDraft({
                ...draft, arms: draft.arms.filter((_, i) => i !== index),
                control: draft.control === index ? 0 : draft.control > index ? draft.control - 1 : draft.control,
              })}>Remove arm {index + 1}</button>
            )}
            {problem(`arms[${index}].name`)}{problem(`arms[${index}].template_id`)}{problem(`arms[${index}].weight`)}
          </div>
        ))}
        <button type="button" className="quiet" disabled={draft.arms.length >= MAX_ARMS} onClick={() => setDraft({
          ...draft, arms: [...draft.arms, { name: ARM_NAMES[draft.arms.length] ?? "", template_id: versions[0]?.id ?? "", weight: "0" }],
        })}>Add arm</button>
        {problem("arms")}
      </fieldset>
      <div className="filters">
        <label>Holdout (%)<input aria-label="Holdout (%)" type="number" min={0} max={50} value={draft.holdout_weight} {...aria("holdout_weight")}
          onChange={(e) => setDraft({ ...draft, holdout_weight: e.target.value })} />{problem("holdout_weight")}</label>
        <label>Goal<select aria-label="Goal" value={draft.goal} onChange={(e) => setDraft({ ...draft, goal: e.target.value as Draft["goal"] })}>
          <option value="CLICKED">clicked</option><option value="READ">read</option>
        </select></label>
        <label>Window (hours)<input aria-label="Window (hours)" type="number" min={1} value={draft.window_hours} {...aria("window_hours")}
          onChange={(e) => setDraft({ ...draft, window_hours: e.target.value })} />{problem("window_hours")}</label>
        <label>Minimum sample per arm<input aria-label="Minimum sample per arm" type="number" min={1} value={draft.min_sample_per_arm} {...aria("min_sample_per_arm")}
          onChange={(e) => setDraft({ ...draft, min_sample_per_arm: e.target.value })} />{problem("min_sample_per_arm")}</label>
      </div>
      <p className={total === 100 ? "note" : "error"}>Weights plus holdout: {total} %</p>
      {general && <p className="error" role="alert">{general}</p>}
      <button type="submit" disabled={saving}>Create experiment</button>{" "}
      <button type="button" className="quiet" onClick={onCancel}>Cancel</button>
    </form>
  );
}
