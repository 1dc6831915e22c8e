'use strict';
setTimeout(function tick() {
  throw new TypeError('thrown in a timer');
}, 5);
