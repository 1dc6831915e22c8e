'use strict';
// A function exercising the faas-js-runtime contract; the behaviour is chosen by ?mode=.
const crypto = require('crypto');
const { Readable } = require('stream');

let initialized = false;
let counter = 0;
let ready = true;

// n bytes of a fixed pattern (byte i = i % 251); the test computes the same bytes.
function pattern(n) {
  const unit = Buffer.alloc(251);
  for (let i = 0; i < 251; i++) unit[i] = i;
  const out = Buffer.alloc(n);
  for (let off = 0; off < n; off += 251) unit.copy(out, off, 0, Math.min(251, n - off));
  return out;
}

function describe(body) {
  if (Buffer.isBuffer(body)) return { type: 'buffer', value: body.toString('base64') };
  return { type: body === null ? 'null' : typeof body, value: body };
}

const handle = async (context, body) => {
  const q = context.query;
  switch (q.mode) {
    case 'echo':
      return {
        body: {
          method: context.method,
          query: context.query,
          headers: context.headers,
          httpVersion: context.httpVersion,
          contentType: context.contentType === undefined ? null : context.contentType,
          body: describe(body),
          contextBodySame: context.body === body,
          nameOnContext: context.name === undefined ? null : context.name,
          initialized,
          logger: ['info', 'warn', 'error', 'debug', 'trace', 'fatal'].filter((k) => typeof context.log[k] === 'function'),
        },
      };
    case 'status':
      return { statusCode: Number(q.code), headers: { 'X-Custom': 'yes', 'Content-Type': 'text/plain; charset=utf-8' },
        body: `status ${q.code}` };
    case 'string':
      return 'a plain string';
    case 'object':
      return { a: 1, list: [1, 2, 3] };
    case 'array':
      return [1, 'two'];
    case 'none':
      return undefined;
    case 'empty':
      return '';
    case 'throw':
      throw new Error(`handler exploded (${q.tag})`);
    case 'throwcode': {
      const e = new Error('I am a teapot');
      e.statusCode = 418;
      throw e;
    }
    case 'hash':
      return { body: { length: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex') } };
    case 'big':
      return { body: pattern(Number(q.n)), headers: { 'content-type': 'application/octet-stream' } };
    case 'stream': {
      const total = Number(q.n);
      const data = pattern(total);
      async function* chunks() {
        for (let off = 0; off < total; off += 65536) {
          await new Promise((resolve) => setImmediate(resolve));
          yield data.subarray(off, Math.min(total, off + 65536));
        }
      }
      return { body: Readable.from(chunks()), headers: { 'content-type': 'application/octet-stream' } };
    }
    case 'count':
      counter += 1;
      return { count: counter };
    case 'log':
      context.log.info('info from the function', { tag: q.tag });
      context.log.warn('warning from the function');
      context.log.error('error from the function');
      return 'logged';
    case 'slow':
      await new Promise((resolve) => setTimeout(resolve, Number(q.ms || 1000)));
      return `slow done after ${q.ms} ms`;
    case 'stray':
      setTimeout(() => {
        throw new Error('stray exception outside any request');
      }, 0);
      return 'scheduled';
    case 'notready':
      ready = false;
      return 'not ready any more';
    case 'cloudevent':
      return context.cloudEventResponse({ got: context.cloudevent ? context.cloudevent.type : null })
        .id('reply-1').type('dev.hks.reply').source('/kitchen').version('1.0').response();
    case 'badstatus':
      return { statusCode: 'abc', body: 'x' };
    default:
      return { query: context.query };
  }
};

module.exports = {
  handle,
  init: () => {
    initialized = true;
  },
  shutdown: async () => {
    await new Promise((resolve) => setTimeout(resolve, 10));
    process.stderr.write('shutdown hook called\n');
  },
  liveness: (request, reply) => {
    reply.header('x-health', 'liveness').send('alive and well');
  },
  readiness: async () => (ready ? 'ready to serve' : { statusCode: 503, body: 'not ready' }),
};
