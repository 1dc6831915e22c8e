import { useState } from 'preact/hooks';
import { get, send } from './api.js';
import { Badge, ErrorNote, TableWrap, fmtMs, fmtRelative, fmtTime, html, statusKind, usePoll } from './util.js';

function target(cj) {
  const t = cj.target || {};
  if (t.function) return `${t.function.method} ${t.function.id}${t.function.path}`;
  if (t.task) return `task on ${t.task.template}: ${[...(t.task.command || []), ...(t.task.args || [])].join(' ')}`;
  return '—';
}

function result(cj) {
  if (cj.active_runs && cj.active_runs.length) return html`<${Badge} kind="info">running<//>`;
  return cj.last_result ? html`<${Badge} kind=${statusKind(cj.last_result)}>${cj.last_result}<//>` : '—';
}

export function CronJobs() {
  const { data, error, loaded } = usePoll(() => get('/internal/v1/cronjobs'), 3000);
  const list = (data && data.cronjobs) || [];
  return html`<section aria-labelledby="page-title">
    <h1 id="page-title" tabindex="-1">CronJobs</h1>
    <${ErrorNote} error=${error} />
    ${loaded && !list.length && !error && html`<p>No CronJobs in this project.</p>`}
    ${list.length > 0 && html`<${TableWrap} label="CronJobs">
      <table><thead><tr><th scope="col">Name</th><th scope="col">Schedule</th><th scope="col">Target</th><th scope="col">Next run</th>
        <th scope="col">Last run</th><th scope="col">Result</th><th scope="col">State</th></tr></thead>
      <tbody>${list.map((cj) => html`<tr key=${cj.id}>
        <th scope="row"><a href=${'#/cronjobs/' + cj.id}>${cj.name}</a></th>
        <td><code>${cj.schedule}</code> <span class="sub">${cj.timezone}</span></td>
        <td>${target(cj)}</td>
        <td title=${fmtTime(cj.next_run_at)}>${cj.suspend ? '—' : fmtRelative(cj.next_run_at)}</td>
        <td title=${fmtTime(cj.last_run_at)}>${fmtRelative(cj.last_run_at)}</td>
        <td>${result(cj)}</td>
        <td>${cj.suspend ? html`<${Badge} kind="info">suspended<//>` : html`<${Badge} kind="ok">active<//>`}</td>
      </tr>`)}</tbody></table><//>`}
  </section>`;
}

function Run({ run }) {
  return html`<li class="run">
    <details>
      <summary>
        <span class="run-no">#${run.number}</span>
        <${Badge} kind=${statusKind(run.status)}>${run.status}<//>
        <span>${run.trigger}</span>
        <span>${fmtTime(run.started_at || run.scheduled_at)}</span>
        <span>${fmtMs(run.duration_ms)}</span>
        <span class="sub">${run.reason || ''}</span>
      </summary>
      <pre class="run-logs" aria-label=${'Logs of run ' + run.number}>${run.logs || '(no output)'}</pre>
      ${run.logs_cut && html`<p class="sub">Only the end of the log is shown.</p>`}
    </details>
  </li>`;
}

export function CronJobPage({ id }) {
  const [bump, setBump] = useState(0);
  const [note, setNote] = useState(null);
  const [actionError, setActionError] = useState(null);
  const cj = usePoll(() => get(`/internal/v1/cronjobs/${encodeURIComponent(id)}`), 2000, [id, bump]);
  const runs = usePoll(() => get(`/internal/v1/cronjobs/${encodeURIComponent(id)}/runs?limit=50`), 2000, [id, bump]);
  const job = cj.data;

  const act = async (what, fn) => {
    setActionError(null);
    try {
      await fn();
      setNote(what);
      setBump(bump + 1);
    } catch (e) {
      setActionError(e);
    }
  };
  const trigger = () => act('Run started.', () => send('POST', `/internal/v1/cronjobs/${encodeURIComponent(id)}/trigger`));
  const suspend = (value) => act(value ? 'Suspended.' : 'Resumed.', () => send('PATCH', `/internal/v1/cronjobs/${encodeURIComponent(id)}`, { suspend: value }));

  if (cj.error && cj.error.status === 404)
    return html`<section><h1 id="page-title" tabindex="-1">CronJob not found</h1><p><a href="#/cronjobs">All CronJobs</a></p></section>`;
  const list = (runs.data && runs.data.runs) || [];
  return html`<section aria-labelledby="page-title">
    <p class="crumbs"><a href="#/cronjobs">CronJobs</a> /</p>
    <h1 id="page-title" tabindex="-1">${job ? job.name : id}</h1>
    <${ErrorNote} error=${cj.error} />
    ${job && html`<dl class="facts">
      <div><dt>Id</dt><dd><code>${job.id}</code></dd></div>
      <div><dt>Schedule</dt><dd><code>${job.schedule}</code> (${job.timezone})</dd></div>
      <div><dt>Target</dt><dd>${target(job)}</dd></div>
      <div><dt>State</dt><dd>${job.suspend ? 'suspended' : 'active'}</dd></div>
      <div><dt>Next run</dt><dd>${job.suspend ? '— (suspended)' : `${fmtRelative(job.next_run_at)} (${fmtTime(job.next_run_at)})`}</dd></div>
      <div><dt>Last run</dt><dd>${fmtTime(job.last_run_at)}</dd></div>
      <div><dt>Last result</dt><dd>${result(job)}</dd></div>
      <div><dt>Concurrency</dt><dd>${job.concurrency_policy}</dd></div>
      <div><dt>Missed / skipped</dt><dd>${job.missed_runs} / ${job.skipped_runs}</dd></div>
    </dl>
    <div class="actions">
      <button type="button" onClick=${trigger}>Run now</button>
      ${job.suspend
        ? html`<button type="button" class="secondary" onClick=${() => suspend(false)}>Resume</button>`
        : html`<button type="button" class="secondary" onClick=${() => suspend(true)}>Suspend</button>`}
      <span role="status" class="sub">${note || ''}</span>
    </div>`}
    <${ErrorNote} error=${actionError} />
    <section aria-labelledby="runs-title" class="panel">
      <h2 id="runs-title">Run history</h2>
      <${ErrorNote} error=${runs.error} />
      ${list.length === 0 ? html`<p class="sub">No runs yet.</p>` : html`<ol class="runs" aria-label="Runs, newest first">${list.map((r) => html`<${Run} key=${r.id} run=${r} />`)}</ol>`}
    </section>
  </section>`;
}
