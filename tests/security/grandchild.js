'use strict';
// Attack: leave a process behind (JS version of grandchild.py).
// main -> spawns a detached child -> which spawns a detached grandchild and
// exits; the grandchild appends to /out/marker every 100 ms for 10 minutes.
// The main program waits for the first write, then exits 0.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { gate, emit } = require('./_common.js');

const role = process.argv[3] || 'main';
const out = process.env.HKS_OUT || '/out';
const marker = path.join(out, 'marker');
if (role === 'main') {
  gate('grandchild');
  const c = spawn(process.execPath, [__filename, process.argv[2] || '', 'child'],
    { detached: true, stdio: 'ignore' });
  c.unref();
  const t0 = Date.now();
  const poll = setInterval(() => {
    let size = 0;
    try { size = fs.statSync(marker).size; } catch (e) { /* not yet */ }
    if (size > 0 || Date.now() - t0 > 8000) {
      clearInterval(poll);
      emit({ attack: 'grandchild', marker, first_write_seen: size > 0, child_pid: c.pid });
      process.exitCode = size > 0 ? 0 : 4;
    }
  }, 50);
} else if (role === 'child') {
  const g = spawn(process.execPath, [__filename, process.argv[2] || '', 'grandchild'],
    { detached: true, stdio: 'ignore' });
  g.unref();
} else {
  const end = Date.now() + 600000;
  const tick = setInterval(() => {
    fs.appendFileSync(marker, '.');
    if (Date.now() > end) clearInterval(tick);
  }, 100);
  fs.appendFileSync(marker, '.');
}
