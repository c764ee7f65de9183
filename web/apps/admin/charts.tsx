// Two small SVG charts (no charting library): stacked bars and lines over days. Each is an image with a
// text alternative; the numbers are also in the tables beside them.

const COLORS = ["#0b5cad", "#1a7f37", "#bf8700", "#8250df", "#cf222e", "#1b7c83", "#6e7781"];
const W = 640;
const H = 200;
const PAD = { left: 40, right: 10, top: 10, bottom: 28 };

export interface Series {
  name: string;
  values: (number | null)[];
}

function scale(max: number) {
  const top = max > 0 ? max : 1;
  return (value: number) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - value / top);
}

function Axis({ labels, max, unit }: { labels: string[]; max: number; unit: string }) {
  const y = scale(max);
  const step = (W - PAD.left - PAD.right) / Math.max(labels.length, 1);
  const every = Math.ceil(labels.length / 8);
  return (
    <g fontSize="10" fill="#59636e">
      <line x1={PAD.left} x2={W - PAD.right} y1={y(0)} y2={y(0)} stroke="#d1d9e0" />
      {max > 0 && <text x={PAD.left - 4} y={y(max) + 4} textAnchor="end">{Number(max.toFixed(2))}{unit}</text>}
      <text x={PAD.left - 4} y={y(0)} textAnchor="end">0</text>
      {labels.map((label, i) => i % every === 0 && (
        <text key={label} x={PAD.left + step * (i + 0.5)} y={H - 8} textAnchor="middle">{label.slice(5)}</text>
      ))}
    </g>
  );
}

function Legend({ series }: { series: Series[] }) {
  return (
    <p className="legend">
      {series.map((s, i) => (
        <span key={s.name}><span className="swatch" style={{ background: COLORS[i % COLORS.length] }} /> {s.name}</span>
      ))}
    </p>
  );
}

export function StackedBars({ title, labels, series }: { title: string; labels: string[]; series: Series[] }) {
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(0, ...totals);
  const y = scale(max);
  const step = (W - PAD.left - PAD.right) / Math.max(labels.length, 1);
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${labels.map((l, i) => `${l} ${totals[i]}`).join(", ")}`}>
        <Axis labels={labels} max={max} unit="" />
        {labels.map((label, i) => {
          let base = 0;
          return series.map((s, k) => {
            const value = s.values[i] ?? 0;
            const rect = <rect key={`${label}-${s.name}`} x={PAD.left + step * i + step * 0.15} width={step * 0.7}
              y={y(base + value)} height={y(base) - y(base + value)} fill={COLORS[k % COLORS.length]} />;
            base += value;
            return rect;
          });
        })}
      </svg>
      <figcaption>{title}</figcaption>
      <Legend series={series} />
    </figure>
  );
}

export function Lines({ title, labels, series, unit }: { title: string; labels: string[]; series: Series[]; unit: string }) {
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const y = scale(max);
  const step = (W - PAD.left - PAD.right) / Math.max(labels.length, 1);
  const x = (i: number) => PAD.left + step * (i + 0.5);
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: ${series.map((s) => `${s.name} ${s.values.map((v) => (v === null ? "none" : Number(v.toFixed(2)))).join(" ")}`).join("; ")}`}>
        <Axis labels={labels} max={max} unit={unit} />
        {series.map((s, k) => {
          const points = s.values.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`)).filter(Boolean);
          return (
            <g key={s.name} stroke={COLORS[k % COLORS.length]} fill={COLORS[k % COLORS.length]}>
              <polyline points={points.join(" ")} fill="none" strokeWidth="2" />
              {s.values.map((v, i) => v !== null && <circle key={i} cx={x(i)} cy={y(v)} r="2.5" />)}
            </g>
          );
        })}
      </svg>
      <figcaption>{title}</figcaption>
      <Legend series={series} />
    </figure>
  );
}

export interface Step {
  name: string;
  value: number;
}

/** A funnel: one horizontal bar per step, its length against the first step, labelled with the count and the
 * share of the first step. */
export function Funnel({ title, steps }: { title: string; steps: Step[] }) {
  const FW = 420;
  const ROW = 22;
  const LABEL = 80;
  const NUMBERS = 90;
  const first = steps[0]?.value ?? 0;
  const top = Math.max(1, ...steps.map((s) => s.value));
  const width = (value: number) => ((FW - LABEL - NUMBERS) * value) / top;
  const share = (value: number) => (first > 0 ? ` (${Math.round((value / first) * 100)} %)` : "");
  return (
    <figure className="chart funnel">
      <svg viewBox={`0 0 ${FW} ${ROW * steps.length + 4}`} role="img"
        aria-label={`${title}: ${steps.map((s) => `${s.name} ${s.value}`).join(", ")}`}>
        {steps.map((s, i) => (
          <g key={s.name} fontSize="11">
            <text x={LABEL - 6} y={ROW * i + 15} textAnchor="end" fill="#59636e">{s.name}</text>
            <rect x={LABEL} y={ROW * i + 3} height={ROW - 6} width={width(s.value)} fill={COLORS[i % COLORS.length]} />
            <text x={LABEL + width(s.value) + 4} y={ROW * i + 15} fill="#1f2328">{s.value}{share(s.value)}</text>
          </g>
        ))}
      </svg>
      <figcaption>{title}</figcaption>
    </figure>
  );
}
