'use strict';
// Attack: outlive the wall-clock limit. Expect status "timeout", timeout_reason "wall".
const { gate, emit } = require('./_common.js');

gate('sleeper');
emit({ attack: 'sleeper', stage: 'sleeping' });
setTimeout(() => {
  emit({ attack: 'sleeper', stage: 'woke up', verdict: 'succeeded' });
  process.exitCode = 3;
}, 60000);
