'use strict';
// node exit_code.js exit N | exitcode N
const [how, n] = process.argv.slice(2);
console.log(`exiting with ${n} via ${how}`);
if (how === 'exit') process.exit(Number(n));
process.exitCode = Number(n);
