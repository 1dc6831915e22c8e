import { get } from './api.js';
import { Badge, ErrorNote, TableWrap, fmtBytes, fmtMs, fmtTime, html, statusKind, usePoll } from './util.js';

export function Executions() {
  const { data, error, loaded } = usePoll(() => get('/internal/v1/executions?limit=200'), 4000);
  const list = (data && data.executions) || [];
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">Executions</h1>
    <p class="help">The project's latest runs of <code>execute</code> (hksd keeps the last 500 of the host in memory).</p>
    <${ErrorNote} error=${error} />
    ${loaded && !list.length && !error && html`<p>No executions since hksd started.</p>`}
    ${list.length > 0 && html`<${TableWrap} label="Executions">
      <table>
        <thead><tr><th scope="col">When</th><th scope="col">Id</th><th scope="col">Runtime</th><th scope="col">Status</th>
          <th scope="col" class="num">Exit code</th><th scope="col" class="num">Wall</th><th scope="col" class="num">CPU</th>
          <th scope="col" class="num">Peak memory</th><th scope="col">Start</th><th scope="col">By</th></tr></thead>
        <tbody>${list.map((e) => html`<tr key=${e.id}>
          <td>${fmtTime(e.ts)}</td><td><code>${e.id}</code></td><td>${e.runtime}</td>
          <td><${Badge} kind=${statusKind(e.status)}>${e.status}<//></td>
          <td class="num">${e.exit_code ?? (e.signal ? 'signal ' + e.signal : '—')}</td>
          <td class="num">${fmtMs(e.wall_ms)}</td><td class="num">${fmtMs(e.cpu_ms)}</td>
          <td class="num">${fmtBytes(e.peak_memory_bytes)}</td><td>${e.warm ? 'warm' : 'cold'}</td><td>${e.sub}</td>
        </tr>`)}</tbody>
      </table><//>`}
  </section>`;
}
