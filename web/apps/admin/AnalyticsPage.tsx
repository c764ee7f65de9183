import { useEffect, useState } from "react";
import { api, ApiError, when } from "./api";

interface Rates {
  sent: number;
  failed: number;
  success_rate: number | null;
  median_seconds_to_send: number | null;
}

interface Analytics extends Rates {
  created_from: string;
  created_to: string;
  total: number;
  by_channel: (Rates & { channel: string })[];
  counts: { notification_type: string; channel: string; status: string; count: number }[];
}

const percent = (rate: number | null) => (rate === null ? "—" : `${(rate * 100).toFixed(1)} %`);
const seconds = (value: number | null) => (value === null ? "—" : `${value.toFixed(2)} s`);

/** Figures of the last seven days from the analytics route (charts and time series are not built yet). */
export function AnalyticsPage() {
  const [data, setData] = useState<Analytics | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.request<Analytics>("GET", "/api/v1/notifications/analytics").then(setData, (failure) => setError((failure as ApiError).detail));
  }, []);
  return (
    <section>
      <h1>Analytics</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {data && (
        <>
          <p>From {when(data.created_from)} to {when(data.created_to)}: {data.total} deliveries, {data.sent} sent, {data.failed} failed,
            success {percent(data.success_rate)}, median time to send {seconds(data.median_seconds_to_send)}.</p>
          <h2>By channel</h2>
          <table>
            <thead><tr><th>Channel</th><th>Sent</th><th>Failed</th><th>Success</th><th>Median to send</th></tr></thead>
            <tbody>{data.by_channel.map((c) => (
              <tr key={c.channel}><td>{c.channel}</td><td>{c.sent}</td><td>{c.failed}</td><td>{percent(c.success_rate)}</td><td>{seconds(c.median_seconds_to_send)}</td></tr>
            ))}</tbody>
          </table>
          <h2>By type, channel and status</h2>
          <table>
            <thead><tr><th>Type</th><th>Channel</th><th>Status</th><th>Count</th></tr></thead>
            <tbody>{data.counts.map((c) => (
              <tr key={`${c.notification_type}-${c.channel}-${c.status}`}><td>{c.notification_type}</td><td>{c.channel}</td><td>{c.status}</td><td>{c.count}</td></tr>
            ))}</tbody>
          </table>
        </>
      )}
    </section>
  );
}
