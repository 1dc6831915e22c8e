'use strict';
// Positive control: deliberately exits with status 7.
console.log('exiting with 7');
process.exit(7);
