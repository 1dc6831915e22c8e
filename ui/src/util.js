import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);

// Call load now and every ms while mounted (and when deps change); the latest data and error.
export function usePoll(load, ms, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loaded: false });
  const tick = useRef(0);
  useEffect(() => {
    let alive = true;
    let timer = null;
    const run = async () => {
      const n = ++tick.current;
      try {
        const data = await load();
        if (alive && n === tick.current) setState({ data, error: null, loaded: true });
      } catch (e) {
        if (alive && n === tick.current) setState((s) => ({ ...s, error: e, loaded: true }));
      }
      if (alive) timer = setTimeout(run, ms);
    };
    run();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, deps);
  return state;
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { hour12: false });
}

export function fmtRelative(iso) {
  if (!iso) return '—';
  const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const a = Math.abs(s);
  const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 172800 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function fmtBytes(n) {
  if (!n) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function Badge({ kind, children }) {
  return html`<span class=${'badge badge-' + kind}>${children}</span>`;
}

export function statusKind(status) {
  if (['ok', 'ready', 'succeeded', 'active'].includes(status)) return 'ok';
  if (['running', 'starting', 'deleting', 'suspended'].includes(status)) return 'info';
  return 'bad';
}

export function ErrorNote({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${String(error.message || error)}</p>`;
}

// A table that scrolls sideways on a narrow screen; focusable so the keyboard can scroll it.
export function TableWrap({ label, children }) {
  return html`<div class="table-wrap" role="region" aria-label=${label} tabindex="0">${children}</div>`;
}
