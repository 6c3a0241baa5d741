/** A small SVG line chart of the last `points` values of each series, on a 0–100 scale (percentages). */
export interface Series {
  name: string;
  className: string;
  values: number[];
}

const WIDTH = 600;
const HEIGHT = 160;

export function LineChart({ label, series, points }: { label: string; series: Series[]; points: number }) {
  const max = Math.max(100, ...series.flatMap((s) => s.values));
  const x = (i: number, n: number) => ((points - n + i) / Math.max(1, points - 1)) * WIDTH;
  const y = (v: number) => HEIGHT - (Math.max(0, v) / max) * HEIGHT;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={label} preserveAspectRatio="none">
        {[0.25, 0.5, 0.75].map((f) => (
          <line key={f} className="grid-line" x1={0} x2={WIDTH} y1={HEIGHT * f} y2={HEIGHT * f} />
        ))}
        {series.map((s) => (
          <polyline
            key={s.name}
            className={s.className}
            fill="none"
            vectorEffect="non-scaling-stroke"
            points={s.values.map((v, i) => `${x(i, s.values.length).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}
          />
        ))}
      </svg>
      <figcaption>
        {series.map((s) => (
          <span key={s.name} className={`legend ${s.className}`}>
            {s.name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}
