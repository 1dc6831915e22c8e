'use strict';
// Attack: burn CPU forever. Expect status "timeout", timeout_reason "cpu".
const { gate, emit } = require('./_common.js');

gate('cpuloop');
emit({ attack: 'cpuloop', stage: 'started' });
let x = 0;
for (;;) { x += 1; }
