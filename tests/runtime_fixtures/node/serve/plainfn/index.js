'use strict';
// module.exports = a synchronous function (no hooks).
module.exports = function (context, body) {
  return { body: `sync ${context.method} ${typeof body === 'string' ? body : ''}`.trim(),
    headers: { 'content-type': 'text/plain' } };
};
