// The Prometheus text exposition format, as much as /metrics uses: comments, samples with
// labels, values (with +Inf/NaN). Returns [{name, labels, value}].
export function parseMetrics(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// The sum of the samples named name whose labels include match.
export function sum(samples, name, match = {}) {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

// Distinct values of a label among the samples named name.
export function labelValues(samples, name, label) {
  return [...new Set(samples.filter((s) => s.name === name).map((s) => s.labels[label]))];
}

// Per-second rate of a counter between two polls (a restart, where it falls, counts from 0).
export function rate(before, after, seconds) {
  if (seconds <= 0) return 0;
  const d = after >= before ? after - before : after;
  return d / seconds;
}
