// What a recipient did with a row (engagement) and the decision stored on it, compact, for the Queue and
// Why (not)? pages.
import { Schemas, when } from "./api";

type Engagement = Schemas["EngagementItem"];
type Decision = Schemas["RowDecision"];

/** e.g. "clicked 05/01/2026, 10:00:02 ×2"; a proxy's open says so. The last time is in the title. */
export function EngagementList({ items }: { items: Engagement[] | undefined }) {
  if (!items || items.length === 0) return <span className="note">none</span>;
  return (
    <ul className="engagement" aria-label="Engagement">
      {items.map((e) => {
        const machine = e.detail && e.detail.machine === true;
        const repeated = e.count > 1;
        return (
          <li key={e.kind} data-kind={e.kind} title={repeated ? `last ${when(e.last_at)}` : undefined}>
            <span className={`kind ${e.kind.toLowerCase()}`}>{e.kind.toLowerCase()}</span>
            {machine && <small> (machine)</small>} {when(e.occurred_at)}
            {repeated && <small> ×{e.count}</small>}
          </li>
        );
      })}
    </ul>
  );
}

/** The escalation-on-unread origin of a row ("unread after 60 min"), if the decision records one. */
export function escalatedFrom(decision: Decision | null | undefined): string | null {
  const value = decision?.escalated_from;
  return typeof value === "string" && value ? value : null;
}

/** The stored decision: outcome and reason (and what it came from), or a note for rows stored before. */
export function StoredDecision({ decision }: { decision: Decision | null | undefined }) {
  if (!decision) return <span className="note">not recorded (row stored before decisions were)</span>;
  const escalated = escalatedFrom(decision);
  return (
    <span className="stored-decision">
      <span className={`outcome ${decision.outcome.toLowerCase().replace("_", "-")}`}>{decision.outcome}</span>{" "}
      {decision.reason}
      {decision.held_until && <small> (held until {when(decision.held_until)})</small>}
      {escalated && <><br /><small className="escalated">escalated: {escalated}</small></>}
      {decision.requeued_by && <><br /><small>re-queued by {decision.requeued_by}</small></>}
    </span>
  );
}
