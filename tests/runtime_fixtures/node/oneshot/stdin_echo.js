'use strict';
// Echoes stdin, upper-cased, and its length in bytes.
const data = require('fs').readFileSync(0);
process.stdout.write(`${data.length} ${data.toString('utf8').toUpperCase()}`);
