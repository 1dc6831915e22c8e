'use strict';
// Writes 4 MiB to stdout.
const line = 'x'.repeat(1023) + '\n';
for (let i = 0; i < 4096; i++) process.stdout.write(line);
