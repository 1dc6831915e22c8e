import { useEffect, useRef, useState } from 'preact/hooks';
import { followLogs, get, send } from './api.js';
import { Chart } from './chart.js';
import { Badge, ErrorNote, TableWrap, fmtBytes, fmtMs, fmtRelative, fmtTime, html, statusKind, usePoll } from './util.js';

const LOG_KEEP = 1000;

// The function's log, followed live (GET .../logs?follow=true, NDJSON read as it streams).
function Logs({ id }) {
  const [lines, setLines] = useState([]);
  const [state, setState] = useState('connecting');
  const [paused, setPaused] = useState(false);
  const box = useRef(null);
  const buffer = useRef([]);

  useEffect(() => {
    const ctl = new AbortController();
    let flush = null;
    const push = (rec) => {
      buffer.current.push(rec);
      if (!flush)
        flush = setTimeout(() => {
          flush = null;
          const add = buffer.current;
          buffer.current = [];
          setLines((old) => old.concat(add).slice(-LOG_KEEP));
        }, 100);
    };
    setState('following');
    followLogs(id, { onLine: push, signal: ctl.signal })
      .then(() => setState('ended'))
      .catch((e) => setState(ctl.signal.aborted ? 'stopped' : 'error: ' + e.message));
    return () => {
      ctl.abort();
      clearTimeout(flush);
    };
  }, [id]);

  useEffect(() => {
    if (!paused && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, paused]);

  return html`<section aria-labelledby="logs-title" class="panel">
    <div class="panel-head">
      <h2 id="logs-title">Logs</h2>
      <span class="sub" role="status">${state === 'following' ? 'following live' : state}</span>
      <button type="button" class="secondary" aria-pressed=${paused ? 'true' : 'false'} onClick=${() => setPaused(!paused)}>${paused ? 'Resume scrolling' : 'Pause scrolling'}</button>
    </div>
    <div class="logs" ref=${box} role="log" aria-label="Function logs" aria-live="off" tabindex="0">
      ${lines.length === 0 && html`<p class="sub">No log lines yet.</p>`}
      ${lines.map((l, i) => html`<div class=${'log-line log-' + l.stream} key=${i}><span class="log-ts">${l.ts ? l.ts.slice(11, 23) : ''}</span> <span class="log-src">${l.stream}${l.instance ? ' ' + l.instance : ''}</span> <span class="log-text">${l.line}</span></div>`)}
    </div>
  </section>`;
}

function Invoke({ id, onDone }) {
  const [method, setMethod] = useState('POST');
  const [path, setPath] = useState('/');
  const [body, setBody] = useState('{"hello": "world"}');
  const [contentType, setContentType] = useState('application/json');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const [p, q] = path.split('?');
    const req = { id, method, path: p || '/', headers: { 'content-type': contentType } };
    if (q) req.query = q;
    if (!['GET', 'HEAD'].includes(method)) req.body = body;
    try {
      setResult(await send('POST', '/internal/v1/operations/invoke-function', req));
      onDone && onDone();
    } catch (err) {
      setError(err);
      setResult(null);
    } finally {
      setBusy(false);
    }
  };

  return html`<section aria-labelledby="invoke-title" class="panel">
    <h2 id="invoke-title">Invoke</h2>
    <form onSubmit=${submit} class="invoke">
      <div class="row">
        <div><label for="inv-method">Method</label>
          <select id="inv-method" value=${method} onChange=${(e) => setMethod(e.currentTarget.value)}>
            ${['POST', 'GET', 'PUT', 'PATCH', 'DELETE'].map((m) => html`<option value=${m}>${m}</option>`)}
          </select></div>
        <div class="grow"><label for="inv-path">Path and query</label>
          <input id="inv-path" type="text" value=${path} onInput=${(e) => setPath(e.currentTarget.value)} /></div>
        <div><label for="inv-type">Content-Type</label>
          <input id="inv-type" type="text" value=${contentType} onInput=${(e) => setContentType(e.currentTarget.value)} /></div>
      </div>
      <label for="inv-body">Request body</label>
      <textarea id="inv-body" rows="4" spellcheck="false" value=${body} onInput=${(e) => setBody(e.currentTarget.value)}></textarea>
      <button type="submit" disabled=${busy}>${busy ? 'Invoking…' : 'Invoke'}</button>
    </form>
    <${ErrorNote} error=${error} />
    ${result && html`<div class="result" role="status" aria-label="Invocation result">
      <p>HTTP <strong>${result.status}</strong> in ${fmtMs(result.duration_ms)}${result.cold_start ? ' (cold start)' : ''}</p>
      <pre>${result.body}</pre>
    </div>`}
  </section>`;
}

function Usage({ id }) {
  const { data } = usePoll(() => get(`/internal/v1/functions/${id}/usage`), 5000, [id]);
  const samples = (data && data.samples) || [];
  const times = samples.map((s) => new Date(s.ts).getTime() / 1000);
  const perInterval = (key) => samples.map((s, i) => (i === 0 ? 0 : Math.max(0, s[key] - samples[i - 1][key])));
  return html`<section aria-labelledby="usage-title" class="panel">
    <h2 id="usage-title">Resource use (last 10 minutes)</h2>
    <p class="help">Sampled every ${((data && data.interval_ms) || 5000) / 1000} s by hksd. Memory and CPU are of the function's instances that have ended (a live instance's use is counted when it stops).</p>
    <div class="charts">
      <${Chart} title="Instances" times=${times} series=${[{ label: 'running', values: samples.map((s) => s.instances_running) }, { label: 'busy', values: samples.map((s) => s.instances_busy) }]} />
      <${Chart} title="Invocations per sample" times=${times} series=${[{ label: 'invocations', values: perInterval('invocations') }, { label: 'errors', values: perInterval('errors') }]} />
      <${Chart} title="Peak memory (MiB)" times=${times} series=${[{ label: 'peak', values: samples.map((s) => s.peak_memory_bytes / 1048576) }]} />
      <${Chart} title="CPU time (ms, ended instances)" times=${times} series=${[{ label: 'cpu', values: samples.map((s) => s.cpu_ms) }]} />
    </div>
  </section>`;
}

function Invocations({ id, bump }) {
  const { data, error } = usePoll(() => get(`/internal/v1/functions/${id}/invocations?limit=50`), 3000, [id, bump]);
  const list = (data && data.invocations) || [];
  return html`<section aria-labelledby="calls-title" class="panel">
    <h2 id="calls-title">Recent invocations</h2>
    <${ErrorNote} error=${error} />
    ${list.length === 0 ? html`<p class="sub">None yet.</p>` : html`<${TableWrap} label="Recent invocations">
      <table><thead><tr><th scope="col">When</th><th scope="col">Result</th><th scope="col" class="num">HTTP</th><th scope="col" class="num">Duration</th><th scope="col">Start</th></tr></thead>
      <tbody>${list.map((c, i) => html`<tr key=${c.ts + i}><td>${fmtTime(c.ts)}</td><td><${Badge} kind=${statusKind(c.status)}>${c.status}<//></td>
        <td class="num">${c.http_status ?? '—'}</td><td class="num">${fmtMs(c.duration_ms)}</td><td>${c.cold_start ? 'cold' : 'warm'}</td></tr>`)}</tbody></table><//>`}
  </section>`;
}

function Delete({ fn }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState(null);
  const remove = async () => {
    try {
      await send('POST', '/internal/v1/operations/delete-function', { id: fn.id });
      location.hash = '#/functions';
    } catch (e) {
      setError(e);
    }
  };
  return html`<div class="danger">
    ${!confirming && html`<button type="button" class="danger-button" onClick=${() => setConfirming(true)}>Delete function</button>`}
    ${confirming && html`<div role="group" aria-label="Confirm deletion">
      <p>Delete <strong>${fn.name}</strong> (${fn.id})? Its instances stop and its code and logs are removed.</p>
      <button type="button" class="danger-button" onClick=${remove}>Yes, delete ${fn.name}</button>
      <button type="button" class="secondary" onClick=${() => setConfirming(false)}>Cancel</button>
    </div>`}
    <${ErrorNote} error=${error} />
  </div>`;
}

export function FunctionPage({ id }) {
  const [bump, setBump] = useState(0);
  const { data: fn, error } = usePoll(() => get(`/internal/v1/functions/${id}`), 3000, [id, bump]);
  if (error && error.status === 404)
    return html`<section><h1 id="page-title" tabindex="-1">Function not found</h1><p>${id} does not exist (deleted, expired, or of another project). <a href="#/functions">All functions</a></p></section>`;
  return html`<section aria-labelledby="page-title">
    <p class="crumbs"><a href="#/functions">Functions</a> /</p>
    <h1 id="page-title" tabindex="-1">${fn ? fn.name : id}</h1>
    <${ErrorNote} error=${error} />
    ${fn && html`<dl class="facts">
      <div><dt>Id</dt><dd><code>${fn.id}</code></dd></div>
      <div><dt>Status</dt><dd><${Badge} kind=${statusKind(fn.status)}>${fn.status}<//></dd></div>
      <div><dt>URL</dt><dd><code>${fn.url}</code></dd></div>
      <div><dt>Runtime</dt><dd>${fn.runtime}</dd></div>
      <div><dt>Expires</dt><dd>${fmtRelative(fn.expires_at)} (${fmtTime(fn.expires_at)})</dd></div>
      <div><dt>Invocations</dt><dd data-testid="invocations">${fn.invocations}</dd></div>
      <div><dt>Errors</dt><dd>${fn.errors}</dd></div>
      <div><dt>Cold starts</dt><dd>${fn.cold_starts}</dd></div>
      <div><dt>p50 / p95</dt><dd>${fmtMs(fn.duration_ms && fn.duration_ms.p50)} / ${fmtMs(fn.duration_ms && fn.duration_ms.p95)}</dd></div>
      <div><dt>Instances</dt><dd>${fn.instances.running} running, ${fn.instances.busy} busy (scale ${fn.min_scale}–${fn.max_scale})</dd></div>
      <div><dt>Peak memory</dt><dd>${fmtBytes(fn.resources && fn.resources.peak_memory_bytes)} of ${fn.limits && fn.limits.memory_mb} MiB</dd></div>
      <div><dt>Owner</dt><dd>${fn.owner}</dd></div>
    </dl>`}
    <div class="two">
      <${Invoke} id=${id} onDone=${() => setBump(bump + 1)} />
      <${Logs} id=${id} />
    </div>
    <${Invocations} id=${id} bump=${bump} />
    <${Usage} id=${id} />
    ${fn && html`<${Delete} fn=${fn} />`}
  </section>`;
}
