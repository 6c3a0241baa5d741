/** The Prometheus text format as tests read it: samples by metric name, and one value by labels. */

export interface Sample {
  labels: Record<string, string>;
  value: number;
}
export type Samples = Map<string, Sample[]>;

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy;

/** Every sample of a page (comments skipped); throws on a line that is not one. */
export function parseMetrics(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample: ${line}`);
    const [, name, rawLabels = '', rawValue] = match as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    LABEL.lastIndex = 0;
    for (let m = LABEL.exec(rawLabels); m; m = LABEL.exec(rawLabels)) {
      labels[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const list = samples.get(name) ?? [];
    list.push({ labels, value: Number(rawValue) });
    samples.set(name, list);
  }
  return samples;
}

/**
 * The sum of the samples of `name` whose labels include `labels` (a label a sample lacks counts as
 * ""); undefined when none matches.
 */
export function metricValue(samples: Samples, name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = (samples.get(name) ?? []).filter((s) => Object.entries(labels).every(([k, v]) => (s.labels[k] ?? '') === v));
  return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0);
}
