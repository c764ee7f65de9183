import { FormEvent, useEffect, useState } from "react";
import { api, ApiError, query, Schemas, when } from "./api";
import { EngagementList, escalatedFrom, StoredDecision } from "./engagement";

type WhyAnswer = Schemas["WhyAnswer"];

function explain(issue: string, user: string): Promise<WhyAnswer> {
  return api.request<WhyAnswer>("GET", "/api/v1/notifications/why" + query({ issue_id: issue, user_id: user }));
}

/** `initial`: the question in the page's address (#/why?issue_id=…&user_id=…), asked at once when complete. */
export function WhyPage({ initial }: { initial: URLSearchParams }) {
  const initialIssue = initial.get("issue_id") ?? "";
  const initialUser = initial.get("user_id") ?? "";
  const [issueId, setIssueId] = useState(initialIssue);
  const [userId, setUserId] = useState(initialUser);
  const [answer, setAnswer] = useState<WhyAnswer | null>(null);
  const [error, setError] = useState<string | null>(null);

  const show = (asked: Promise<WhyAnswer>) =>
    asked.then(
      (answered) => {
        setAnswer(answered);
        setError(null);
      },
      (failure) => {
        setError((failure as ApiError).detail);
        setAnswer(null);
      },
    );

  useEffect(() => {
    if (!initialIssue || !initialUser) return;
    let current = true;
    explain(initialIssue, initialUser).then(
      (answered) => {
        if (current) setAnswer(answered);
      },
      (failure) => {
        if (current) setError((failure as ApiError).detail);
      },
    );
    return () => {
      current = false;
    };
  }, [initialIssue, initialUser]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void show(explain(issueId.trim(), userId.trim()));
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
                  <thead><tr><th>Type</th><th>Channel</th><th>Decision</th><th>Why / detail</th><th>Stored decision</th><th>Engagement</th><th>When</th><th>Attempts</th><th>Run</th></tr></thead>
                  <tbody>
                    {event.decisions.map((d) => (
                      <tr key={d.queue_id} data-queue-id={d.queue_id}>
                        <td>{d.notification_type}</td><td>{d.channel}</td>
                        <td>
                          <span className={`decision ${d.decision.replace(" ", "-")}`}>{d.decision}</span>
                          {escalatedFrom(d.recorded) && <><br /><small className="escalated">escalation on unread</small></>}
                        </td>
                        <td>{d.reason ?? ""}{d.address ? <><br /><small>{d.address}</small></> : null}</td>
                        <td className="clip"><StoredDecision decision={d.recorded} /></td>
                        <td><EngagementList items={d.engagement} /></td>
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
