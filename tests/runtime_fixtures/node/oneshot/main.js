'use strict';
// Several files: the entry requires a sibling module (and one in a subdirectory).
const { greet } = require('./greeting');
const { shout } = require('./lib/shout');
console.log(shout(greet(process.argv[2] || 'world')));
