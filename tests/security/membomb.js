'use strict';
// Attack: memory bomb from node. Buffers live outside the V8 heap, so only
// the memory cgroup can stop this: with --memory the run must end "oom".
const { gate, emit } = require('./_common.js');

gate('membomb');
emit({ attack: 'membomb', stage: 'started' });
const chunks = [];
for (let i = 0; i < 4096; i++) {
  chunks.push(Buffer.alloc(1 << 20, (i & 0xff) | 1)); // filled: every page touched
}
emit({ attack: 'membomb', stage: 'done', mib: chunks.length, verdict: 'succeeded' });
process.stderr.write(`ATTACK SUCCEEDED: allocated ${chunks.length} MiB\n`);
process.exitCode = 3;
