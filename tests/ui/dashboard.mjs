// End-to-end test of the dashboard in headless Chromium (Debian's, driven by playwright-core)
// against a real hksd: HKSD_URL and HKS_TOKEN come from the caller (test_dashboard.py starts
// hksd). Each step prints "ok - ..." or fails the run; screenshots go to ARTIFACTS.
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { chromium } = createRequire(join(repo, 'ui', 'package.json'))('playwright-core');

const BASE = process.env.HKSD_URL;
const TOKEN = process.env.HKS_TOKEN;
const ARTIFACTS = process.env.ARTIFACTS || join(repo, 'build', 'ui-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
assert.ok(BASE && TOKEN, 'HKSD_URL and HKS_TOKEN are required');
mkdirSync(ARTIFACTS, { recursive: true });

const results = { passed: 0, failed: 0 };
async function step(name, f) {
  try {
    await f();
    results.passed++;
    console.log('ok - ' + name);
  } catch (e) {
    results.failed++;
    console.log('not ok - ' + name + '\n  ' + String(e.stack || e).split('\n').join('\n  '));
    throw e;
  }
}

async function api(method, path, body) {
  const resp = await fetch(BASE + path, {
    method,
    headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  assert.ok(resp.ok, `${method} ${path}: HTTP ${resp.status} ${text}`);
  return JSON.parse(text);
}

const ECHO = `module.exports = { handle: async (ctx, body) => {
  console.log('dashboard-e2e got', JSON.stringify(body));
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ echo: body }) };
} };`;

async function signIn(page) {
  await page.goto(BASE + '/ui/');
  await page.getByLabel('API token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Functions', level: 1 }).waitFor();
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const consoleErrors = [];
let fn = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  // nothing may leave this origin (no CDN, no font service)
  const foreign = [];
  page.on('request', (r) => !r.url().startsWith(BASE) && !r.url().startsWith('data:') && foreign.push(r.url()));

  await step('a wrong token is refused on the sign-in page', async () => {
    await page.goto(BASE + '/ui/');
    await page.getByLabel('API token').fill('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'refused' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('hks.token')), null);
  });

  await step('sign in; the token is kept in sessionStorage only', async () => {
    await signIn(page);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('hks.token')), TOKEN);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.ok(!(await context.cookies()).length, 'no cookie');
    await page.screenshot({ path: join(ARTIFACTS, '01-signed-in.png'), fullPage: true });
  });

  await step('a function deployed through the API appears in the list', async () => {
    fn = await api('POST', '/internal/v1/operations/deploy-function', { name: 'e2e-echo', runtime: 'node', code: ECHO, ttl_seconds: 900 });
    const row = page.locator(`tr[data-function="${fn.id}"]`);
    await row.waitFor({ timeout: 10000 });
    assert.match(await row.textContent(), /e2e-echo/);
    assert.match(await row.textContent(), /node/);
    await page.screenshot({ path: join(ARTIFACTS, '02-functions.png'), fullPage: true });
  });

  await step("its page follows the logs: an invocation's log line arrives", async () => {
    await page.getByRole('link', { name: 'e2e-echo' }).click();
    await page.getByRole('heading', { name: 'e2e-echo', level: 1 }).waitFor();
    await page.getByText('following live').waitFor();
    const log = page.getByRole('log', { name: 'Function logs' });
    await log.getByText('deployed').waitFor({ timeout: 10000 });
    // invoked from outside the page: the line must arrive through the followed stream
    await api('POST', '/internal/v1/operations/invoke-function', { id: fn.id, body: '{"from":"api-1"}' });
    await log.getByText(/dashboard-e2e got .*api-1/).waitFor({ timeout: 15000 });
    await page.screenshot({ path: join(ARTIFACTS, '03-logs.png'), fullPage: true });
  });

  await step('invoke with a body from the page; the count changes', async () => {
    const count = page.getByTestId('invocations');
    await page.waitForFunction(() => document.querySelector('[data-testid=invocations]')?.textContent === '1', null, { timeout: 10000 });
    await page.getByLabel('Request body').fill('{"from":"page"}');
    await page.getByRole('button', { name: 'Invoke', exact: true }).click();
    const result = page.getByRole('status', { name: 'Invocation result' });
    await result.getByText('HTTP 200').waitFor({ timeout: 15000 });
    assert.match(await result.textContent(), /"echo":\{"from":"page"\}/);
    await page.waitForFunction(() => document.querySelector('[data-testid=invocations]')?.textContent === '2', null, { timeout: 10000 });
    assert.equal(await count.textContent(), '2');
    await page.getByRole('log', { name: 'Function logs' }).getByText(/dashboard-e2e got .*"from":"page"/).waitFor({ timeout: 15000 });
    const calls = page.getByRole('region', { name: 'Recent invocations' });
    await calls.locator('tbody tr').nth(1).waitFor({ timeout: 10000 });
    await page.screenshot({ path: join(ARTIFACTS, '04-invoked.png'), fullPage: true });
  });

  let cj = null;
  await step('trigger a CronJob run and see it in the history with its logs', async () => {
    cj = await api('POST', '/internal/v1/cronjobs', {
      name: 'e2e-nightly', schedule: '0 3 * * *',
      target: { function: { id: fn.id, method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: '{"from":"cron"}' } },
    });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'CronJobs' }).click();
    await page.getByRole('link', { name: 'e2e-nightly' }).click();
    await page.getByRole('heading', { name: 'e2e-nightly', level: 1 }).waitFor();
    await page.getByText('No runs yet.').waitFor();
    await page.getByRole('button', { name: 'Run now' }).click();
    const runs = page.getByRole('list', { name: 'Runs, newest first' });
    const first = runs.locator('li').first();
    await first.getByText('succeeded').waitFor({ timeout: 20000 });
    assert.match(await first.textContent(), /manual/);
    await first.locator('summary').click();
    const logs = page.getByLabel('Logs of run 1');
    await logs.waitFor();
    assert.match(await logs.textContent(), /HTTP 200/);
    assert.match(await logs.textContent(), /"from":"cron"/);
    await page.screenshot({ path: join(ARTIFACTS, '05-cronjob-run.png'), fullPage: true });
  });

  await step('suspend the CronJob', async () => {
    await page.getByRole('button', { name: 'Suspend' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor({ timeout: 10000 });
    const now = await api('GET', '/internal/v1/cronjobs/' + cj.id);
    assert.equal(now.suspend, true);
    assert.equal(now.next_run_at, null);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'CronJobs' }).click();
    await page.getByRole('row', { name: /e2e-nightly/ }).getByText('suspended').waitFor();
  });

  await step('executions and system metrics pages', async () => {
    const ex = await api('POST', '/internal/v1/operations/execute', { runtime: 'python', code: 'print(6 * 7)' });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Executions' }).click();
    await page.getByRole('heading', { name: 'Executions', level: 1 }).waitFor();
    await page.getByText(ex.id).waitFor({ timeout: 10000 });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'System' }).click();
    await page.getByText('Warm sandboxes ready (pools)').waitFor();
    await page.waitForFunction(() => document.querySelectorAll('.chart canvas').length >= 3);
    await page.waitForTimeout(4500); // two polls: the rates have a point
    assert.match(await page.locator('.chart-latest').first().textContent(), /python: \d/);
    await page.screenshot({ path: join(ARTIFACTS, '06-system.png'), fullPage: true });
  });

  await step('delete the function from its page', async () => {
    await page.goto(BASE + '/ui/#/functions/' + fn.id);
    await page.getByRole('button', { name: 'Delete function' }).click();
    await page.getByRole('button', { name: 'Yes, delete e2e-echo' }).click();
    await page.getByRole('heading', { name: 'Functions', level: 1 }).waitFor();
    await page.locator(`tr[data-function="${fn.id}"]`).waitFor({ state: 'detached', timeout: 10000 });
    const list = await api('GET', '/internal/v1/functions');
    assert.ok(!list.functions.some((f) => f.id === fn.id));
    await api('DELETE', '/internal/v1/cronjobs/' + cj.id);
  });

  await step('no request left the origin and the page logged no error', async () => {
    assert.deepEqual(foreign, []);
    assert.deepEqual(consoleErrors.filter((e) => !/404|Failed to load resource/.test(e)), []);
  });
  await context.close();

  await step('keyboard only: sign in and reach a page', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 800 } });
    const p = await ctx.newPage();
    await p.goto(BASE + '/ui/');
    await p.keyboard.press('Tab');
    assert.equal(await p.evaluate(() => document.activeElement.id), 'token');
    await p.keyboard.insertText(TOKEN);
    await p.keyboard.press('Tab');
    await p.keyboard.press('Enter');
    await p.getByRole('heading', { name: 'Functions', level: 1 }).waitFor();
    // the skip link comes first, then the navigation
    await p.keyboard.press('Tab');
    assert.equal(await p.evaluate(() => document.activeElement.textContent), 'Skip to content');
    await p.keyboard.press('Tab');
    await p.keyboard.press('Tab');
    assert.equal(await p.evaluate(() => document.activeElement.textContent), 'Executions');
    // the focus is visible (an outline drawn by :focus-visible)
    const outline = await p.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none');
    await p.keyboard.press('Enter');
    await p.getByRole('heading', { name: 'Executions', level: 1 }).waitFor();
    await p.screenshot({ path: join(ARTIFACTS, '07-keyboard.png') });
    await ctx.close();
  });

  await step('narrow screen: no sideways scrolling of the page', async () => {
    const ctx = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const p = await ctx.newPage();
    await signIn(p);
    const f2 = await api('POST', '/internal/v1/operations/deploy-function', { name: 'narrow', runtime: 'node', code: ECHO, ttl_seconds: 300 });
    await p.locator(`tr[data-function="${f2.id}"]`).waitFor({ timeout: 10000 });
    const wide = () => p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok((await wide()) <= 1, 'functions list overflows: ' + (await wide()));
    await p.screenshot({ path: join(ARTIFACTS, '08-narrow-functions.png'), fullPage: true });
    await p.getByRole('link', { name: 'narrow' }).click();
    await p.getByRole('heading', { name: 'narrow', level: 1 }).waitFor();
    await p.getByRole('log', { name: 'Function logs' }).getByText('deployed').waitFor({ timeout: 10000 });
    assert.ok((await wide()) <= 1, 'function page overflows: ' + (await wide()));
    await p.screenshot({ path: join(ARTIFACTS, '09-narrow-function.png'), fullPage: true });
    await api('POST', '/internal/v1/operations/delete-function', { id: f2.id });
    await ctx.close();
  });
} catch (e) {
  // the failing step printed itself
} finally {
  await browser.close();
}
console.log(`${results.passed} passed, ${results.failed} failed`);
process.exit(results.failed ? 1 : 0);
