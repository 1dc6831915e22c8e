'use strict';
const { greet } = require('./greeting');

function check(value) {
  if (value.length > 3) {
    throw new Error(`too long: ${value}`);
  }
}

console.log('before the exception');
check(greet('fixture'));
