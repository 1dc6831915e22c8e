'use strict';
// Attack: fork bomb via child_process (bounded observation). Spawns
// `sleep 120` children until spawn fails; with --pids N (HKS_PIDS) the
// failure must be EAGAIN before N processes. The children are left behind on
// purpose: the sandbox must kill them.
const { spawn } = require('child_process');
const { gate, emit, EXIT_BLOCKED, EXIT_SUCCEEDED, EXIT_UNEXPECTED } = require('./_common.js');

gate('forkbomb');
const limit = Number(process.env.HKS_PIDS || 64);
const SAFETY_CAP = 2000;
let count = 0;
let errCode = null;
const children = [];
for (; count < SAFETY_CAP; count++) {
  let child;
  try {
    child = spawn('/bin/sleep', ['120'], { stdio: 'ignore', argv0: 'sleep-' + (process.argv[2] || 'x') });
  } catch (e) {
    errCode = e.code || String(e);
    break;
  }
  child.on('error', () => {});
  if (child.pid === undefined) {
    // the spawn error is reported on the child object (asynchronously)
    errCode = 'pending';
    child.on('error', (e) => { errCode = e.code; });
    break;
  }
  children.push(child);
}
setImmediate(() => setImmediate(() => {
  const obs = { attack: 'forkbomb', spawned: children.length, errno: errCode, limit };
  if (errCode === null) {
    obs.verdict = 'succeeded';
    emit(obs);
    process.stderr.write(`ATTACK SUCCEEDED: spawned ${children.length} processes without hitting a limit\n`);
    process.exitCode = EXIT_SUCCEEDED;
  } else {
    const ok = errCode === 'EAGAIN' && children.length < limit;
    obs.verdict = ok ? 'blocked' : 'unexpected';
    emit(obs);
    process.exitCode = ok ? EXIT_BLOCKED : EXIT_UNEXPECTED;
  }
  for (const c of children) c.unref();
  process.exit();
}));
