'use strict';

// Unit tests: call the function directly with a hand-made context.
const { handle } = require('..');
const test = require('tape');

const log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

test('Unit: a GET request is answered with OK', async (t) => {
  t.plan(1);
  const result = await handle({ log, method: 'GET', query: { name: 'tiger' } });
  t.deepEqual(result, { body: 'OK' });
});

test('Unit: a POST request is answered with OK', async (t) => {
  t.plan(1);
  const body = { name: 'tiger' };
  const result = await handle({ log, method: 'POST', query: {}, body }, body);
  t.deepEqual(result, { body: 'OK' });
});
