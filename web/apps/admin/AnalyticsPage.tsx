import { useEffect, useState } from "react";
import { api, ApiError, Schemas, when } from "./api";
import { Lines, StackedBars } from "./charts";

type Analytics = Schemas["DeliveryAnalytics"];
type Series = Schemas["AnalyticsSeries"];

const percent = (rate: number | null) => (rate === null ? "—" : `${(rate * 100).toFixed(1)} %`);
const seconds = (value: number | null) => (value === null ? "—" : `${value.toFixed(2)} s`);

/** Volume by day × channel (or type), success rate, p50/p95 time to send, diversions and failure reasons. */
export function AnalyticsPage() {
  const [data, setData] = useState<Analytics | null>(null);
  const [series, setSeries] = useState<Series | null>(null);
  const [days, setDays] = useState(14);
  const [by, setBy] = useState<"channel" | "notification_type">("channel");
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
