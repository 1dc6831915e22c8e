'use strict';
// Positive control: a benign node program.
const os = require('os');
console.log(JSON.stringify({
  attack: 'none', hello: 'hello from node',
  uid: process.getuid(), gid: process.getgid(),
  hostname: os.hostname(), cwd: process.cwd(),
  argv1: process.argv[2] || null,
}));
