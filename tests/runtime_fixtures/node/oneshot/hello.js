'use strict';
console.log('hello from node');
console.error('a line on stderr');
