'use strict';
console.log('looping');
for (;;) { /* spin */ }
