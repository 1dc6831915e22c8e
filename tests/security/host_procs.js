'use strict';
// Attack: see or signal host processes (pids in HKS_HOST_PIDS): they must not
// be in /proc and process.kill(pid, 0 / SIGKILL) must fail with ESRCH.
const fs = require('fs');
const { gate, finish } = require('./_common.js');

gate('host_procs');
const hostPids = (process.env.HKS_HOST_PIDS || '').split(',').filter(Boolean).map(Number);
const visible = {};
for (const e of fs.readdirSync('/proc')) {
  if (!/^\d+$/.test(e)) continue;
  try {
    visible[e] = fs.readFileSync(`/proc/${e}/cmdline`, 'latin1').split('\0').join(' ').trim();
  } catch (err) {
    visible[e] = null;
  }
}
const results = {};
for (const pid of hostPids) {
  const cl = visible[String(pid)];
  results[`/proc/${pid} visible`] = { visible: String(pid) in visible, cmdline: cl === undefined ? null : cl,
    verdict: cl && cl.includes('sleep') ? 'succeeded' : 'blocked' };
  for (const sig of [0, 'SIGKILL']) {
    const label = `process.kill(${pid}, ${sig})`;
    try {
      process.kill(pid, sig);
      results[label] = { ok: true, verdict: 'succeeded' };
    } catch (e) {
      results[label] = { ok: false, code: e.code, verdict: e.code === 'ESRCH' ? 'blocked' : 'unexpected' };
    }
  }
}
const foreign = Object.entries(visible).filter(([, c]) => c && c.includes('sleep'));
results['foreign processes in /proc'] = { foreign, verdict: foreign.length ? 'succeeded' : 'blocked' };
finish('host_procs', results, { visible_pids: visible, my_pid: process.pid, host_pids: hostPids });
