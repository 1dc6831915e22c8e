'use strict';
async function work() {
  await new Promise((resolve) => setTimeout(resolve, 5));
  throw new RangeError('rejected later');
}
work();
