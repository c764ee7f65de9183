import { useState } from "react";
import { api, ApiError, Channel, CHANNELS, NotificationType, query, Schemas, STATUSES, TYPES, when } from "./api";
import { useCursorList, useFilterForm } from "./useCursorList";
import { EngagementList, StoredDecision } from "./engagement";

type QueueItem = Schemas["QueueItem"];
type QueuePage = Schemas["CursorPage_QueueItem_"];

const EMPTY = { status: "", notification_type: "", channel: "", recipient_id: "", issue_id: "", created_from: "", created_to: "" };

function isoOrEmpty(local: string): string {
  return local ? new Date(local).toISOString() : "";
}

function fetchPage(filters: typeof EMPTY, after: string | null): Promise<QueuePage> {
  return api.request<QueuePage>("GET", "/api/v1/notifications/queue" + query({
    ...filters, created_from: isoOrEmpty(filters.created_from), created_to: isoOrEmpty(filters.created_to),
    cursor: after, limit: "50",
  }));
}

export function QueuePage() {
  const { filters, submit, field, clear } = useFilterForm(EMPTY);
  const { items, cursor, error, loadMore, reload } = useCursorList(fetchPage, filters);
  const [messages, setMessages] = useState<Record<string, string>>({});


  const redeliver = async (item: QueueItem) => {
    // This row's own filters; the request id makes a double click send once.
    // The row's channel and type are the API's own values (typed as plain strings in its answer).
    const body: Schemas["RedeliverRequest"] = {
      workflow_id: item.workflow_id, recipient_id: item.recipient_id, channel: item.channel as Channel,
      notification_type: item.notification_type as NotificationType, issue_id: item.issue_id,
      request_id: `console-${item.id}-${item.attempts.length}`,
    };
    try {
      const started = await api.request<Schemas["RedeliverStarted"]>("POST", "/api/v1/notifications/redeliver", body);
      setMessages((was) => ({ ...was, [item.id]: `Redelivery started: ${started.workflow_id}` }));
      setTimeout(() => reload(), 1500);
    } catch (failure) {
      setMessages((was) => ({ ...was, [item.id]: (failure as ApiError).detail }));
    }
  };


  return (
    <section>
      <h1>Queue</h1>
      <form className="filters" onSubmit={submit}>
        <label>Status<select aria-label="Status" {...field("status")}><option value="">all</option>{STATUSES.map((s) => <option key={s}>{s}</option>)}</select></label>
        <label>Type<select aria-label="Type" {...field("notification_type")}><option value="">all</option>{TYPES.map((s) => <option key={s}>{s}</option>)}</select></label>
        <label>Channel<select aria-label="Channel" {...field("channel")}><option value="">all</option>{CHANNELS.map((s) => <option key={s}>{s}</option>)}</select></label>
        <label>Recipient<input aria-label="Recipient" {...field("recipient_id")} size={10} /></label>
        <label>Issue<input aria-label="Issue" {...field("issue_id")} size={10} /></label>
        <label>From<input aria-label="From" type="datetime-local" {...field("created_from")} /></label>
        <label>To<input aria-label="To" type="datetime-local" {...field("created_to")} /></label>
        <button type="submit">Filter</button>
        <button type="button" className="quiet" onClick={clear}>Clear</button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      <table>
        <thead>
          <tr><th>Created</th><th>Type</th><th>Channel</th><th>Status</th><th>Recipient</th><th>Issue</th><th>Decision</th><th>Engagement</th><th>Attempts</th><th>Error</th><th>Run</th><th /></tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <tr key={item.id} data-queue-id={item.id} data-status={item.status}>
              <td>{when(item.created_at)}</td>
              <td>{item.notification_type}</td>
              <td>{item.channel}</td>
              <td><span className={`status ${item.status.toLowerCase()}`}>{item.status}</span></td>
              <td>{item.recipient_id}<br /><small>{item.address}</small></td>
              <td>{item.issue_id ? <a href={`#/why?issue_id=${encodeURIComponent(item.issue_id)}&user_id=${encodeURIComponent(item.recipient_id ?? "")}`}>{item.issue_id}</a> : "—"}</td>
              <td className="clip"><StoredDecision decision={item.decision} /></td>
              <td><EngagementList items={item.engagement} /></td>
              <td>
                {item.attempts.length}
                {item.attempts.length > 0 && (
                  <details><summary>details</summary>
                    <ol>{item.attempts.map((a) => <li key={`${a.attempt}-${a.created_at}`}>{a.status} {when(a.sent_at ?? a.created_at)} {a.error_details}</li>)}</ol>
                  </details>
                )}
              </td>
              <td className="clip">{item.error_message ?? ""}</td>
              <td>{item.workflow_url ? <a href={item.workflow_url} target="_blank" rel="noreferrer">run</a> : "—"}</td>
              <td>
                {item.status === "FAILED" && <button type="button" onClick={() => void redeliver(item)}>Redeliver</button>}
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
