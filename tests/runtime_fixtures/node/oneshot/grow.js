'use strict';
// A growing array of 1 MiB buffers (filled, so the pages are really used).
const keep = [];
for (;;) keep.push(Buffer.alloc(1 << 20, keep.length & 0xff));
