// The HKS Functions dashboard: sign in with a token, then functions, executions, CronJobs and
// system metrics, all from the public API (hash routes: #/functions, #/functions/<id>, ...).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { claims, onAuthChange, signOut, token } from './api.js';
import { CronJobPage, CronJobs } from './cronjobs.js';
import { Executions } from './executions.js';
import { FunctionPage } from './function.js';
import { Functions } from './functions.js';
import { SignIn } from './signin.js';
import { System } from './system.js';
import { html } from './util.js';
import './style.css';

const NAV = [
  ['#/functions', 'Functions'],
  ['#/executions', 'Executions'],
  ['#/cronjobs', 'CronJobs'],
  ['#/system', 'System'],
];

function route() {
  const parts = (location.hash || '#/functions').slice(2).split('/').map(decodeURIComponent);
  return { section: parts[0] || 'functions', id: parts[1] || null };
}

function Page({ r }) {
  if (r.section === 'functions') return r.id ? html`<${FunctionPage} id=${r.id} />` : html`<${Functions} />`;
  if (r.section === 'executions') return html`<${Executions} />`;
  if (r.section === 'cronjobs') return r.id ? html`<${CronJobPage} id=${r.id} />` : html`<${CronJobs} />`;
  if (r.section === 'system') return html`<${System} />`;
  return html`<section><h1 id="page-title" tabindex="-1">Not found</h1><p><a href="#/functions">Functions</a></p></section>`;
}

function App() {
  const [tok, setTok] = useState(token());
  const [reason, setReason] = useState(null);
  const [r, setR] = useState(route());

  useEffect(() => onAuthChange((t, why) => {
    setTok(t);
    setReason(why || null);
  }), []);
  useEffect(() => {
    const f = () => setR(route());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  // a new page: its heading takes the focus, so keyboard and screen reader users start there
  useEffect(() => {
    const h = document.getElementById('page-title');
    if (h && document.activeElement === document.body) h.focus({ preventScroll: true });
    document.title = (h ? h.textContent + ' · ' : '') + 'HKS Functions';
  }, [r.section, r.id, tok]);

  if (!tok) return html`<${SignIn} reason=${reason} />`;
  const c = claims(tok) || {};
  const expires = c.exp ? new Date(c.exp * 1000).toLocaleTimeString(undefined, { hour12: false }) : '?';
  return html`<a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('page-title')?.focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand">HKS Functions</span>
      <nav aria-label="Main">
        <ul>${NAV.map(([href, label]) => html`<li><a href=${href} aria-current=${href.slice(2) === r.section ? 'page' : undefined}>${label}</a></li>`)}</ul>
      </nav>
      <div class="who">
        <span>${c.sub || '?'} · project <strong>${c.project || '?'}</strong> · token until ${expires}</span>
        <button type="button" class="secondary" onClick=${() => signOut('Signed out.')}>Sign out</button>
      </div>
    </header>
    <main id="main"><${Page} r=${r} /></main>`;
}

render(html`<${App} />`, document.getElementById('app'));
