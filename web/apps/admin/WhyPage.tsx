import { FormEvent, useEffect, useState } from "react";
import { api, ApiError, query, when } from "./api";

interface Decision {
  queue_id: string;
  notification_type: string;
  channel: string;
  decision: string;
  reason: string | null;
  status: string;
  at: string | null;
  attempts: number;
  address: string | null;
  workflow_url: string | null;
}

interface EventDecisions {
  event_id: string | null;
  event_type: string | null;
  actor_id: string | null;
  occurred_at: string | null;
  workflow_url: string | null;
  note: string | null;
  decisions: Decision[];
}

interface WhyAnswer {
  issue_id: string;
  user_id: string;
  user_known: boolean;
  events: EventDecisions[];
  truncated: boolean;
}

export function WhyPage({ initial }: { initial: URLSearchParams }) {
  const [issueId, setIssueId] = useState(initial.get("issue_id") ?? "");
  const [userId, setUserId] = useState(initial.get("user_id") ?? "");
  const [answer, setAnswer] = useState<WhyAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);

  const ask = async (issue: string, user: string) => {
    try {
      setAnswer(await api.request<WhyAnswer>("GET", "/api/v1/notifications/why" + query({ issue_id: issue, user_id: user })));
      setError(null);
    } catch (failure) {
      setError((failure as ApiError).detail);
      setAnswer(null);
    }
  };
  useEffect(() => {
    if (issueId && userId) void ask(issueId, userId);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void ask(issueId.trim(), userId.trim());
  };

  return (
    <section>
      <h1>Why (not)?</h1>
      <p>Did a person hear about an issue, and if not, why? Every event of the issue and, per channel, what was decided.</p>
      <form className="filters" onSubmit={submit}>
        <label>Issue<input aria-label="Issue" value={issueId} onChange={(e) => setIssueId(e.target.value)} placeholder="ISS-42" required /></label>
        <label>Person<input aria-label="Person" value={userId} onChange={(e) => setUserId(e.target.value)} placeholder="u-agent" required /></label>
        <button type="submit">Explain</button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      {answer && (
        <div className="why">
          {!answer.user_known && <p className="error">{answer.user_id} is not in the directory: nothing can reach them.</p>}
          {answer.events.length === 0 && <p>No event recorded for {answer.issue_id}.</p>}
          {answer.events.map((event, index) => (
            <article key={event.event_id ?? `other-${index}`} className="why-event">
              <h2>
                {event.event_type} {event.event_id && <small>{event.event_id}</small>}{" "}
                {event.occurred_at && <small>{when(event.occurred_at)}</small>}
                {event.actor_id && <small> by {event.actor_id}</small>}{" "}
                {event.workflow_url && <a href={event.workflow_url} target="_blank" rel="noreferrer">run</a>}
              </h2>
              {event.note && <p className="note">{event.note}</p>}
              {event.decisions.length > 0 && (
                <table>
                  <thead><tr><th>Type</th><th>Channel</th><th>Decision</th><th>Why / detail</th><th>When</th><th>Attempts</th><th>Run</th></tr></thead>
                  <tbody>
                    {event.decisions.map((d) => (
                      <tr key={d.queue_id}>
                        <td>{d.notification_type}</td><td>{d.channel}</td>
                        <td><span className={`decision ${d.decision.replace(" ", "-")}`}>{d.decision}</span></td>
                        <td>{d.reason ?? ""}{d.address ? <><br /><small>{d.address}</small></> : null}</td>
                        <td>{when(d.at)}</td><td>{d.attempts}</td>
                        <td>{d.workflow_url ? <a href={d.workflow_url} target="_blank" rel="noreferrer">run</a> : "—"}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </article>
          ))}
          {answer.truncated && <p className="note">Only the first 2,000 deliveries are shown.</p>}
        </div>
      )}
    </section>
  );
}
