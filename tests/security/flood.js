'use strict';
// Attack: output flood on process.argv[3] ("stdout" | "stderr"). Writes 64 KiB
// blocks synchronously forever (1 GiB cap). Expect status "output_limit".
const fs = require('fs');
const { gate } = require('./_common.js');

gate('flood');
const fd = process.argv[3] === 'stderr' ? 2 : 1;
const block = Buffer.alloc(65536, 'A');
block[65535] = 10;
let total = 0;
while (total < (1 << 30)) {
  try {
    total += fs.writeSync(fd, block);
  } catch (e) {
    if (e.code !== 'EAGAIN') throw e;
  }
}
process.stderr.write(`ATTACK SUCCEEDED: wrote ${total} bytes without being stopped\n`);
process.exitCode = 3;
