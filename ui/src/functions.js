import { get } from './api.js';
import { Badge, ErrorNote, TableWrap, fmtBytes, fmtMs, fmtRelative, fmtTime, html, statusKind, usePoll } from './util.js';

export function Functions() {
  const { data, error, loaded } = usePoll(() => get('/internal/v1/functions'), 3000);
  const list = (data && data.functions) || [];
  list.sort((a, b) => (a.name + a.id).localeCompare(b.name + b.id));
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">Functions</h1>
    <${ErrorNote} error=${error} />
    ${loaded && !list.length && !error && html`<p>No functions in this project yet. Deploy one with <code>hks-func deploy</code> or the API.</p>`}
    ${list.length > 0 && html`<${TableWrap} label="Functions">
      <table>
        <thead><tr>
          <th scope="col">Name</th><th scope="col">Status</th><th scope="col">URL</th><th scope="col">Runtime</th>
          <th scope="col">Expires</th><th scope="col" class="num">Invocations</th><th scope="col" class="num">Errors</th>
          <th scope="col" class="num">p50</th><th scope="col" class="num">p95</th><th scope="col" class="num">Peak memory</th>
        </tr></thead>
        <tbody>${list.map((f) => html`<tr key=${f.id} data-function=${f.id}>
          <th scope="row"><a href=${'#/functions/' + f.id}>${f.name}</a><div class="sub">${f.id}</div></th>
          <td><${Badge} kind=${statusKind(f.status)}>${f.status}<//></td>
          <td class="url"><code>${f.url}</code></td>
          <td>${f.runtime}</td>
          <td title=${fmtTime(f.expires_at)}>${fmtRelative(f.expires_at)}</td>
          <td class="num" data-col="invocations">${f.invocations}</td>
          <td class="num" data-col="errors">${f.errors}</td>
          <td class="num">${fmtMs(f.duration_ms && f.duration_ms.p50)}</td>
          <td class="num">${fmtMs(f.duration_ms && f.duration_ms.p95)}</td>
          <td class="num">${fmtBytes(f.resources && f.resources.peak_memory_bytes)}</td>
        </tr>`)}</tbody>
      </table><//>`}
  </section>`;
}
