'use strict';

// Integration tests: serve the function over HTTP with faas-js-runtime (the
// runtime Knative Functions uses for Node.js) and send it real requests.
const { start } = require('faas-js-runtime');
const request = require('supertest');
const test = require('tape');

const { handle } = require('..');

// Read the response body as text, whatever its content type.
const asText = (res, callback) => {
  let data = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => { data += chunk; });
  res.on('end', () => callback(null, data));
};

const withServer = (t, run) => {
  start(handle).then((server) => run(server, () => server.close()), (err) => {
    t.error(err);
    t.end();
  });
};

test('Integration: GET /?name=tiger is answered with OK', (t) => {
  withServer(t, (server, done) => {
    request(server)
      .get('/?name=tiger')
      .expect(200)
      .buffer(true)
      .parse(asText)
      .end((err, res) => {
        t.error(err, 'no error');
        t.equal(res && res.body, 'OK');
        done();
        t.end();
      });
  });
});

test('Integration: POST / with a JSON body is answered with OK', (t) => {
  withServer(t, (server, done) => {
    request(server)
      .post('/')
      .send({ name: 'tiger' })
      .expect(200)
      .buffer(true)
      .parse(asText)
      .end((err, res) => {
        t.error(err, 'no error');
        t.equal(res && res.body, 'OK');
        done();
        t.end();
      });
  });
});
