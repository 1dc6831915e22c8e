'use strict';
// Shared helpers for the JavaScript attack programs (tests/security/*.js).
// Same conventions as _common.py: one JSON line on stdout; exit 0 = attack
// failed the right way, 3 = attack SUCCEEDED, 4 = failed in an unexpected
// way, 5 = refused to run because we are not inside the sandbox.
// process.argv[2] is the suite marker (for `pgrep -f` on the host).

const os = require('os');

const EXIT_BLOCKED = 0;
const EXIT_SUCCEEDED = 3;
const EXIT_UNEXPECTED = 4;
const EXIT_REFUSED = 5;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function gate(attack) {
  const problems = [];
  if (process.getuid() !== 1000 || process.geteuid() !== 1000) {
    problems.push(`uid=${process.getuid()} euid=${process.geteuid()} (expected 1000)`);
  }
  if (os.hostname() !== 'sandbox') {
    problems.push(`hostname=${JSON.stringify(os.hostname())} (expected "sandbox")`);
  }
  if (problems.length) {
    emit({ attack, refused: problems.join('; ') });
    process.stderr.write(`refusing to run attack ${attack} outside the sandbox: ${problems.join('; ')}\n`);
    process.exit(EXIT_REFUSED);
  }
}

// results: {label: {verdict: 'blocked'|'succeeded'|'unexpected', ...}}
function finish(attack, results, extra) {
  const verdicts = Object.values(results).map((r) => r.verdict);
  let verdict = 'blocked';
  let code = EXIT_BLOCKED;
  if (verdicts.includes('succeeded')) {
    verdict = 'succeeded';
    code = EXIT_SUCCEEDED;
  } else if (verdicts.some((v) => v !== 'blocked')) {
    verdict = 'unexpected';
    code = EXIT_UNEXPECTED;
  }
  emit(Object.assign({ attack, results, verdict }, extra || {}));
  const bad = Object.keys(results).filter((k) => results[k].verdict !== 'blocked');
  if (code === EXIT_SUCCEEDED) process.stderr.write(`ATTACK SUCCEEDED: ${attack}: ${bad.join(', ')}\n`);
  else if (code === EXIT_UNEXPECTED) process.stderr.write(`attack ${attack} failed in an unexpected way: ${bad.join(', ')}\n`);
  // let stdout drain before exiting
  process.exitCode = code;
}

// Run a synchronous fs-like operation; classify by error code.
function tryOp(fn, okCodes) {
  try {
    const v = fn();
    return { ok: true, value: v === undefined ? null : String(v).slice(0, 200), verdict: 'succeeded' };
  } catch (e) {
    return { ok: false, code: e.code || String(e), verdict: okCodes.includes(e.code) ? 'blocked' : 'unexpected' };
  }
}

module.exports = { EXIT_BLOCKED, EXIT_SUCCEEDED, EXIT_UNEXPECTED, EXIT_REFUSED, emit, gate, finish, tryOp };
