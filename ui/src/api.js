// The hksd API as the agents use it: every call carries the signed-in token. The token lives in
// sessionStorage only (gone when the tab closes); a 401 signs out.
const TOKEN_KEY = 'hks.token';
const listeners = new Set();

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  listeners.forEach((f) => f(value));
}

export function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  listeners.forEach((f) => f(null, reason));
}

export function onAuthChange(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

// The claims of a JWT (not verified here: hksd does that on every call).
export function claims(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error;
    super(e ? `${e.message} (${e.code}, HTTP ${status})` : `HTTP ${status}`);
    this.status = status;
    this.code = e && e.code;
  }
}

function headers(extra) {
  return { Authorization: 'Bearer ' + token(), ...extra };
}

async function check(resp) {
  if (resp.status === 401) {
    signOut('The token was refused (expired or invalid): sign in again.');
  }
  if (!resp.ok) {
    let body = null;
    try {
      body = await resp.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(resp.status, body);
  }
  return resp;
}

export async function get(path) {
  const resp = await check(await fetch(path, { headers: headers(), cache: 'no-store' }));
  return resp.json();
}

export async function send(method, path, body) {
  const resp = await check(
    await fetch(path, {
      method,
      headers: headers({ 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return resp.json();
}

export async function metricsText() {
  const resp = await check(await fetch('/metrics', { cache: 'no-store' }));
  return resp.text();
}

// Follow a function's log: onLine for every NDJSON record as it arrives, until signal aborts or
// the stream ends (the function was deleted). Resolves when it ends.
export async function followLogs(id, { tail = 200, onLine, signal }) {
  const resp = await check(
    await fetch(`/internal/v1/functions/${encodeURIComponent(id)}/logs?follow=true&tail=${tail}`, {
      headers: headers(),
      signal,
      cache: 'no-store',
    }),
  );
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      try {
        onLine(JSON.parse(line));
      } catch {
        onLine({ ts: '', stream: 'system', instance: '', line });
      }
    }
  }
}
