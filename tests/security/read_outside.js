'use strict';
// Attack: read files outside the binds (JS version of read_outside.py).
// /etc/shadow, /root, host directories and the test's secret directory
// (HKS_SECRET_DIR / HKS_SECRET_FILE, not bound in) by host path, through
// /proc/self/root and ../ from /code: every attempt must fail with ENOENT.
const fs = require('fs');
const path = require('path');
const { gate, finish, tryOp } = require('./_common.js');

gate('read_outside');
const secretDir = process.env.HKS_SECRET_DIR || '/nonexistent-secret-dir';
const secretFile = process.env.HKS_SECRET_FILE || path.join(secretDir, 'secret.txt');
const ENOENT = ['ENOENT'];
const results = {
  'read /etc/shadow': tryOp(() => fs.readFileSync('/etc/shadow').length, ENOENT),
  'list /root': tryOp(() => fs.readdirSync('/root').join(','), ENOENT),
  'list /home': tryOp(() => fs.readdirSync('/home').join(','), ENOENT),
  'list /work': tryOp(() => fs.readdirSync('/work').join(','), ENOENT),
  'list secret dir': tryOp(() => fs.readdirSync(secretDir).join(','), ENOENT),
  'read secret file': tryOp(() => fs.readFileSync(secretFile).length, ENOENT),
  'read secret via /proc/self/root': tryOp(() => fs.readFileSync('/proc/self/root' + secretFile).length, ENOENT),
  'read secret via ../ from /code': tryOp(() => fs.readFileSync('/code/../../..' + secretFile).length, ENOENT),
  'read secret via /proc/1/root': tryOp(() => fs.readFileSync('/proc/1/root' + secretFile).length, ['ENOENT', 'EACCES']),
};
// paths of another (concurrently running) sandbox: its bind target and host source
for (const p of (process.env.HKS_OTHER_PATHS || '').split(':').filter(Boolean)) {
  results['other sandbox: read ' + p] = tryOp(() => fs.readFileSync(p).length, ENOENT);
  results['other sandbox: list ' + path.dirname(p)] = tryOp(() => fs.readdirSync(path.dirname(p)).join(','), ENOENT);
}
finish('read_outside', results);
