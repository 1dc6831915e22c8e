import { useEffect, useRef, useState } from 'preact/hooks';
import { metricsText } from './api.js';
import { Chart } from './chart.js';
import { labelValues, parseMetrics, rate, sum } from './prom.js';
import { ErrorNote, html } from './util.js';

const POLL_MS = 2000;
const KEEP = 150; // 5 minutes of points

// System metrics from /metrics (the Prometheus text), polled; rates are computed from the counters
// between two polls.
export function System() {
  const [points, setPoints] = useState([]);
  const [error, setError] = useState(null);
  const last = useRef(null);

  useEffect(() => {
    let alive = true;
    let timer = null;
    const poll = async () => {
      try {
        const samples = parseMetrics(await metricsText());
        const now = Date.now() / 1000;
        const runtimes = labelValues(samples, 'hks_pool_ready', 'runtime');
        const counters = {
          requests: sum(samples, 'hks_http_requests_total'),
          invocations: sum(samples, 'hks_invocations_total'),
          executions: sum(samples, 'hks_executions_total'),
          cronRuns: sum(samples, 'hks_cronjob_runs_total'),
        };
        const prev = last.current;
        const dt = prev ? now - prev.t : 0;
        const point = {
          t: now,
          pools: Object.fromEntries(runtimes.map((r) => [r, sum(samples, 'hks_pool_ready', { runtime: r })])),
          functions: sum(samples, 'hks_functions'),
          instances: sum(samples, 'hks_function_instances'),
          cronActive: sum(samples, 'hks_cronjob_runs_active'),
          rates: Object.fromEntries(Object.entries(counters).map(([k, v]) => [k, prev ? rate(prev.counters[k], v, dt) : 0])),
        };
        last.current = { t: now, counters };
        if (alive) {
          setError(null);
          setPoints((old) => old.concat([point]).slice(-KEEP));
        }
      } catch (e) {
        if (alive) setError(e);
      }
      if (alive) timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, []);

  const times = points.map((p) => p.t);
  const runtimes = points.length ? Object.keys(points[points.length - 1].pools) : [];
  const series = (f, label) => ({ label, values: points.map(f) });
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">System</h1>
    <p class="help">From <code>/metrics</code> every ${POLL_MS / 1000} s while this page is open; rates are per second between polls.</p>
    <${ErrorNote} error=${error} />
    <div class="charts">
      <${Chart} title="Warm sandboxes ready (pools)" times=${times} series=${runtimes.map((r) => series((p) => p.pools[r] || 0, r))} />
      <${Chart} title="Functions and instances" times=${times} series=${[series((p) => p.functions, 'functions'), series((p) => p.instances, 'instances'), series((p) => p.cronActive, 'CronJob runs')]} />
      <${Chart} title="Request rates (per second)" times=${times} unit="/s" series=${[series((p) => p.rates.requests, 'HTTP requests'), series((p) => p.rates.invocations, 'invocations'), series((p) => p.rates.executions, 'executions'), series((p) => p.rates.cronRuns, 'CronJob runs')]} />
    </div>
  </section>`;
}
