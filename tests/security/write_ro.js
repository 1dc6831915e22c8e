'use strict';
// Attack: write to /code (read-only bind of a world-writable host dir: only
// EROFS may stop it), /usr, / and /etc (EROFS or EACCES).
const fs = require('fs');
const { gate, finish, tryOp } = require('./_common.js');

gate('write_ro');
const NAME = 'pwned-by-sandbox-js';
const EROFS = ['EROFS'];
const RO_OR_ACCES = ['EROFS', 'EACCES'];
const results = {
  ['create /code/' + NAME]: tryOp(() => fs.writeFileSync('/code/' + NAME, 'pwned\n'), EROFS),
  'append /code/victim.txt': tryOp(() => fs.appendFileSync('/code/victim.txt', 'pwned\n'), EROFS),
  'unlink /code/victim.txt': tryOp(() => fs.unlinkSync('/code/victim.txt'), EROFS),
  'chmod /code/victim.txt': tryOp(() => fs.chmodSync('/code/victim.txt', 0o4777), EROFS),
  ['mkdir /code/' + NAME]: tryOp(() => fs.mkdirSync('/code/' + NAME + '.d'), EROFS),
  ['create /usr/' + NAME]: tryOp(() => fs.writeFileSync('/usr/' + NAME, 'pwned\n'), RO_OR_ACCES),
  ['create /usr/lib/' + NAME]: tryOp(() => fs.writeFileSync('/usr/lib/' + NAME, 'pwned\n'), RO_OR_ACCES),
  'append /usr/bin/node': tryOp(() => fs.appendFileSync(fs.realpathSync('/usr/bin/node'), 'x'), RO_OR_ACCES),
  ['create /' + NAME]: tryOp(() => fs.writeFileSync('/' + NAME, 'pwned\n'), RO_OR_ACCES),
  'append /etc/passwd': tryOp(() => fs.appendFileSync('/etc/passwd', 'pwned::0:0::/:/bin/sh\n'), RO_OR_ACCES),
};
let tmpWritable = true;
try { fs.writeFileSync('/tmp/' + NAME, 'ok'); } catch (e) { tmpWritable = false; }
finish('write_ro', results, { tmp_writable: tmpWritable });
