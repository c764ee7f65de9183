import { useEffect, useState } from "react";
import { api, ApiError, CHANNELS, query, Schemas, when } from "./api";
import { Funnel, Lines, StackedBars } from "./charts";

type Analytics = Schemas["DeliveryAnalytics"];
type Series = Schemas["AnalyticsSeries"];
type Engagement = Schemas["EngagementFunnel"];
type FunnelStep = Schemas["FunnelStep"];

const percent = (rate: number | null) => (rate === null ? "—" : `${(rate * 100).toFixed(1)} %`);
const seconds = (value: number | null) => (value === null ? "—" : `${value.toFixed(2)} s`);
/** A time to read: seconds, minutes or hours, whichever reads best. */
function duration(value: number | null): string {
  if (value === null) return "—";
  if (value < 60) return `${Number(value.toFixed(1))} s`;
  if (value < 3600) return `${Number((value / 60).toFixed(1))} min`;
  if (value < 172800) return `${Number((value / 3600).toFixed(1))} h`;
  return `${Number((value / 86400).toFixed(1))} days`;
}

/** One type × channel of the funnel: the bars, then the rates and the median time to read as text, then its days. */
function FunnelFigure({ step, days }: { step: FunnelStep; days: FunnelStep[] }) {
  const title = `${step.notification_type} × ${step.channel}`;
  return (
    <div className="funnel-item">
      <Funnel title={title} steps={[
        { name: "sent", value: step.sent },
        { name: "delivered", value: step.delivered },
        { name: "seen", value: step.seen },
        { name: "read", value: step.read },
        { name: "clicked", value: step.clicked },
      ]} />
      <p aria-label={`${title} rates`}>
        Bounce rate {percent(step.bounce_rate)} ({step.bounced}), complaint rate {percent(step.complaint_rate)}
        {" "}({step.complained}), median time to read {duration(step.median_seconds_to_read)}
        {step.opened > 0 && `, opened by a person ${step.opened}`}.
      </p>
      <table aria-label={`${title} by day`}>
        <thead><tr><th>Day</th><th>Sent</th><th>Delivered</th><th>Seen</th><th>Read</th><th>Clicked</th><th>Median to read</th></tr></thead>
        <tbody>{days.map((d) => (
          <tr key={d.day}><td>{d.day}</td><td>{d.sent}</td><td>{d.delivered}</td><td>{d.seen}</td><td>{d.read}</td><td>{d.clicked}</td><td>{duration(d.median_seconds_to_read)}</td></tr>
        ))}</tbody>
      </table>
    </div>
  );
}

/** Volume by day × channel (or type), success rate, p50/p95 time to send, diversions and failure reasons. */
export function AnalyticsPage() {
  const [data, setData] = useState<Analytics | null>(null);
  const [series, setSeries] = useState<Series | null>(null);
  const [days, setDays] = useState(14);
  const [by, setBy] = useState<"channel" | "notification_type">("channel");
  const [engagement, setEngagement] = useState<Engagement | null>(null);
  const [funnelChannel, setFunnelChannel] = useState("");
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.request<Analytics>("GET", "/api/v1/notifications/analytics").then(setData, (failure) => setError((failure as ApiError).detail));
  }, []);
  // The series for the days chosen; an answer for an earlier choice arriving late is dropped.
  useEffect(() => {
    let current = true;
    api.request<Series>("GET", `/api/v1/notifications/analytics/series?days=${days}`).then(
      (loaded) => {
        if (current) setSeries(loaded);
      },
      (failure) => {
        if (current) setError((failure as ApiError).detail);
      },
    );
    return () => {
      current = false;
    };
  }, [days]);
  // The funnel over the same days (rows created since then), for one channel or all.
  useEffect(() => {
    let current = true;
    const from = new Date(Date.now() - days * 86_400_000).toISOString();
    api.request<Engagement>("GET", `/api/v1/notifications/analytics/engagement${query({ from, channel: funnelChannel })}`).then(
      (loaded) => {
        if (current) setEngagement(loaded);
      },
      (failure) => {
        if (current) setError((failure as ApiError).detail);
      },
    );
    return () => {
      current = false;
    };
  }, [days, funnelChannel]);

  const labels = series?.days.map((d) => d.day) ?? [];
  const keys = [...new Set(series?.volume.map((v) => v[by]) ?? [])].sort();
  const volume = keys.map((key) => ({
    name: key,
    values: labels.map((day) => series!.volume.filter((v) => v.day === day && v[by] === key).reduce((n, v) => n + v.count, 0)),
  }));
  return (
    <section>
      <h1>Analytics</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {data && (
        <p>Last 7 days ({when(data.created_from)} – {when(data.created_to)}): {data.total} deliveries, {data.sent} sent,
          {" "}{data.failed} failed, success {percent(data.success_rate)}, median time to send {seconds(data.median_seconds_to_send)}.</p>
      )}
      <div className="filters">
        <label>Days
          <select aria-label="Days" value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {[7, 14, 30, 90].map((n) => <option key={n} value={n}>{n}</option>)}
          </select>
        </label>
        <label>Volume by
          <select aria-label="Volume by" value={by} onChange={(e) => setBy(e.target.value as typeof by)}>
            <option value="channel">channel</option><option value="notification_type">type</option>
          </select>
        </label>
      </div>
      {series && (
        <div className="charts">
          <StackedBars title={`Deliveries per day by ${by === "channel" ? "channel" : "type"}`} labels={labels} series={volume} />
          <Lines title="Success rate per day" unit="" labels={labels}
            series={[{ name: "success rate (0–1)", values: series.days.map((d) => d.success_rate) }]} />
          <Lines title="Time to send per day (seconds)" unit=" s" labels={labels} series={[
            { name: "p50", values: series.days.map((d) => d.p50_seconds_to_send) },
            { name: "p95", values: series.days.map((d) => d.p95_seconds_to_send) },
          ]} />
          <StackedBars title="Diverted per day" labels={labels} series={[
            { name: "digested (person's choice)", values: series.days.map((d) => d.digested) },
            { name: "rate-capped (to hourly digest)", values: series.days.map((d) => d.rate_capped) },
          ]} />
        </div>
      )}
      <h2>Engagement funnel ({days} days)</h2>
      <div className="filters">
        <label>Funnel channel
          <select aria-label="Funnel channel" value={funnelChannel} onChange={(e) => setFunnelChannel(e.target.value)}>
            <option value="">all</option>
            {CHANNELS.map((c) => <option key={c} value={c}>{c}</option>)}
          </select>
        </label>
      </div>
      {engagement && (engagement.totals.length === 0 ? <p>Nothing sent in this period.</p> : (
        <div className="charts">
          {engagement.totals.map((step) => (
            <FunnelFigure
              key={`${step.notification_type}-${step.channel}`}
              step={step}
              days={engagement.days.filter((d) => d.notification_type === step.notification_type && d.channel === step.channel)}
            />
          ))}
        </div>
      ))}
      {data && (
        <>
          <h2>By channel (7 days)</h2>
          <table>
            <thead><tr><th>Channel</th><th>Sent</th><th>Failed</th><th>Success</th><th>Median to send</th></tr></thead>
            <tbody>{data.by_channel.map((c) => (
              <tr key={c.channel}><td>{c.channel}</td><td>{c.sent}</td><td>{c.failed}</td><td>{percent(c.success_rate)}</td><td>{seconds(c.median_seconds_to_send)}</td></tr>
            ))}</tbody>
          </table>
        </>
      )}
      {series && (
        <>
          <h2>Top failure reasons ({days} days)</h2>
          {series.top_failure_reasons.length === 0 ? <p>No failures.</p> : (
            <table>
              <thead><tr><th>Reason</th><th>Count</th></tr></thead>
              <tbody>{series.top_failure_reasons.map((r) => <tr key={r.reason}><td className="clip">{r.reason}</td><td>{r.count}</td></tr>)}</tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
