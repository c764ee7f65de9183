import { FormEvent, useState } from "react";
import { api, ApiError, CHANNELS, query, Schemas, when } from "./api";
import { useCursorList, useFilterForm } from "./useCursorList";

type Suppression = Schemas["SuppressionOut"];
type SuppressionPage = Schemas["CursorPage_SuppressionOut_"];
type SuppressionIn = Schemas["SuppressionIn"];

const S = "/api/v1/notifications/suppressions";
export const REASONS = ["HARD_BOUNCE", "SOFT_BOUNCE_LIMIT", "COMPLAINT", "MANUAL", "INVALID"];
const REASON_LABELS: Record<string, string> = {
  HARD_BOUNCE: "hard bounce", SOFT_BOUNCE_LIMIT: "soft bounces", COMPLAINT: "complaint", MANUAL: "manual", INVALID: "invalid address",
};

const EMPTY = { channel: "", reason: "", address: "", active: "" };
const FIELDS = ["channel", "address", "scope", "note"];
const NEW: SuppressionIn = { channel: "EMAIL", address: "", scope: "ALL", note: "" };

function fetchPage(filters: typeof EMPTY, after: string | null): Promise<SuppressionPage> {
  return api.request<SuppressionPage>("GET", S + query({ ...filters, address: filters.address.trim(), cursor: after, limit: "50" }));
}

export function SuppressionsPage() {
  const { filters, submit, field, clear } = useFilterForm(EMPTY);
  const { items, setItems, cursor, error, loadMore, reload } = useCursorList(fetchPage, filters);
  const [messages, setMessages] = useState<Record<string, string>>({});


  const reactivate = async (entry: Suppression) => {
    try {
      const removed = await api.request<Suppression>("DELETE", `${S}/${encodeURIComponent(entry.id)}`);
      setItems((was) => was.map((item) => (item.id === removed.id ? removed : item)));
      setMessages((was) => ({ ...was, [entry.id]: `${removed.address} gets ${removed.channel} notifications again` }));
    } catch (failure) {
      setMessages((was) => ({ ...was, [entry.id]: (failure as ApiError).detail }));
    }
  };


  return (
    <section>
      <h1>Suppressions</h1>
      <p className="note">
        Addresses notiflow does not send to: hard bounces, repeated soft bounces, complaints (critical notifications
        still go), addresses a gateway called invalid, and entries added here. Reactivating an address takes it off
        the list (the entry is kept, inactive); both are audited.
      </p>
      <AddSuppression onAdded={() => reload()} />
      <h2>The list</h2>
      <form className="filters" onSubmit={submit} aria-label="Filters">
        <label>Channel<select aria-label="Channel" {...field("channel")}><option value="">all</option>{CHANNELS.map((s) => <option key={s}>{s}</option>)}</select></label>
        <label>Reason<select aria-label="Reason" {...field("reason")}><option value="">all</option>{REASONS.map((s) => <option key={s}>{s}</option>)}</select></label>
        <label>Address<input aria-label="Address" {...field("address")} size={24} /></label>
        <label>State<select aria-label="State" {...field("active")}>
          <option value="">all</option><option value="true">on the list</option><option value="false">removed</option>
        </select></label>
        <button type="submit">Filter</button>
        <button type="button" className="quiet" onClick={clear}>Clear</button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      <table aria-label="Suppressions">
        <thead>
          <tr><th>Address</th><th>Channel</th><th>Reason</th><th>Code and text</th><th>Since</th><th>Caused by</th><th>State</th><th /></tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <tr key={item.id} data-suppression-id={item.id} data-active={String(item.active)}>
              <td>{item.address}</td>
              <td>{item.channel}</td>
              <td>
                <span className={`reason ${item.reason.toLowerCase().replace(/_/g, "-")}`}>{REASON_LABELS[item.reason] ?? item.reason}</span>
                {item.scope === "NON_CRITICAL" && <><br /><small>critical notifications still go</small></>}
              </td>
              <td className="clip">
                {item.status_code && <code>{item.status_code}</code>} {item.status_text ?? (item.status_code ? "" : "—")}
              </td>
              <td title={item.description}>{when(item.created_at)}{item.created_by && <><br /><small>by {item.created_by}</small></>}</td>
              <td>{item.queue_id ? <>queue row <code className="id">{item.queue_id}</code></> : "—"}</td>
              <td>
                {item.active
                  ? <span className="status failed">suppressed</span>
                  : <><span className="status sent">removed</span><br /><small>{when(item.removed_at)}{item.removed_by && ` by ${item.removed_by}`}</small></>}
              </td>
              <td className="actions">
                {item.active && (
                  <button type="button" aria-label={`Reactivate ${item.address}`} onClick={() => void reactivate(item)}>Reactivate</button>
                )}
                {messages[item.id] && <p role="status"><small>{messages[item.id]}</small></p>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {items.length === 0 && !error && <p>Nothing matches.</p>}
      {cursor && <button type="button" onClick={() => void loadMore(cursor)}>Load more</button>}
    </section>
  );
}

/** Add a MANUAL entry; the API's refusal (422: not an address; 409: already listed) is shown beside its field. */
function AddSuppression({ onAdded }: { onAdded: (added: Suppression) => void }) {
  const [draft, setDraft] = useState<SuppressionIn>(NEW);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [added, setAdded] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  // A refusal is said beside its field: the one the API names, else the address (a 409 "already on the list",
  // or a 422 about the address itself); anything else (403, unreachable) above the form's button.
  const named = (caught: ApiError) => caught.errors.filter((e) => FIELDS.includes(e.field));
  const messageFor = (field: string): string | undefined => {
    if (!failure) return undefined;
    const mine = named(failure).find((e) => e.field === field);
    if (mine) return mine.message;
    if (field === "address" && named(failure).length === 0 && (failure.status === 409 || failure.status === 422)) return failure.detail;
    return undefined;
  };
  const general = failure && !FIELDS.some((f) => messageFor(f)) ? failure.detail : null;
  const problem = (field: string) => {
    const message = messageFor(field);
    return message ? <span id={`add-${field}-error`} className="error field-error">{message}</span> : null;
  };
  const aria = (field: string) => ({
    "aria-invalid": Boolean(messageFor(field)), "aria-describedby": messageFor(field) ? `add-${field}-error` : undefined,
  });

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaving(true);
    try {
      const body: SuppressionIn = { ...draft, note: draft.note?.trim() ? draft.note.trim() : null };
      const stored = await api.request<Suppression>("POST", S, body);
      setFailure(null);
      setAdded(`Added ${stored.channel} ${stored.address}: nothing more is sent to it`);
      setDraft({ ...NEW, channel: draft.channel });
      onAdded(stored);
    } catch (caught) {
      setFailure(caught as ApiError);
      setAdded(null);
    } finally {
      setSaving(false);
    }
  };

  return (
    <form className="filters add-suppression" aria-label="Add a suppression" onSubmit={save} noValidate>
      <label>Channel<select aria-label="New entry channel" value={draft.channel} {...aria("channel")}
        onChange={(e) => setDraft({ ...draft, channel: e.target.value as SuppressionIn["channel"] })}>
        {CHANNELS.map((s) => <option key={s}>{s}</option>)}
      </select>{problem("channel")}</label>
      <label>Address to suppress<input aria-label="Address to suppress" value={draft.address} size={28} {...aria("address")}
        onChange={(e) => setDraft({ ...draft, address: e.target.value })} />{problem("address")}</label>
      <label>Scope<select aria-label="Scope" value={draft.scope} {...aria("scope")}
        onChange={(e) => setDraft({ ...draft, scope: e.target.value as SuppressionIn["scope"] })}>
        <option value="ALL">every notification</option>
        <option value="NON_CRITICAL">non-critical only</option>
      </select>{problem("scope")}</label>
      <label>Note<input aria-label="Note" value={draft.note ?? ""} size={28} {...aria("note")}
        onChange={(e) => setDraft({ ...draft, note: e.target.value })} />{problem("note")}</label>
      <button type="submit" disabled={saving || !draft.address.trim()}>Suppress</button>
      {general && <p className="error" role="alert">{general}</p>}
      <p role="status">{added}</p>
    </form>
  );
}
