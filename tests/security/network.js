'use strict';
// Attack: reach the host network from node (JS version of network.py).
// TCP and UDP to 127.0.0.1 (HKS_TCP_PORT / HKS_UDP_PORT, listened on by the
// test on the host) must fail at socket creation (EPERM / EAFNOSUPPORT /
// EACCES: only AF_UNIX is allowed without --network); the host abstract unix
// socket HKS_ABSTRACT must be unreachable (ECONNREFUSED: own net namespace).
const net = require('net');
const dgram = require('dgram');
const { gate, finish } = require('./_common.js');

gate('network');
const tcpPort = Number(process.env.HKS_TCP_PORT || 9);
const udpPort = Number(process.env.HKS_UDP_PORT || 9);
const abstract = process.env.HKS_ABSTRACT || 'hks-sectest-none';
const SOCKET_DENIED = ['EPERM', 'EAFNOSUPPORT', 'EACCES'];

function tcp(host, family) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port: tcpPort, family });
    const t = setTimeout(() => { s.destroy(); resolve({ code: 'TIMEOUT', verdict: 'unexpected' }); }, 3000);
    s.on('connect', () => {
      s.end('pwned from the sandbox (js)\n');
      clearTimeout(t);
      resolve({ ok: true, verdict: 'succeeded' });
    });
    s.on('error', (e) => {
      clearTimeout(t);
      // ECONNREFUSED/ENETUNREACH would mean the socket was created: AF_INET allowed
      resolve({ ok: false, code: e.code, verdict: SOCKET_DENIED.includes(e.code) ? 'blocked' : 'unexpected' });
    });
  });
}

function udp(type, host) {
  return new Promise((resolve) => {
    let s;
    try {
      s = dgram.createSocket(type);
    } catch (e) {
      resolve({ ok: false, code: e.code, stage: 'create', verdict: SOCKET_DENIED.includes(e.code) ? 'blocked' : 'unexpected' });
      return;
    }
    let done = false;
    const fin = (r) => { if (!done) { done = true; try { s.close(); } catch (e) { /* */ } resolve(r); } };
    s.on('error', (e) => fin({ ok: false, code: e.code, stage: 'error', verdict: SOCKET_DENIED.includes(e.code) ? 'blocked' : 'unexpected' }));
    s.send('pwned from the sandbox (js)\n', udpPort, host, (err) => {
      if (err) fin({ ok: false, code: err.code, stage: 'send', verdict: SOCKET_DENIED.includes(err.code) ? 'blocked' : 'unexpected' });
      else fin({ ok: true, verdict: 'succeeded' });
    });
    setTimeout(() => fin({ code: 'TIMEOUT', verdict: 'unexpected' }), 3000);
  });
}

function abstractUnix() {
  return new Promise((resolve) => {
    const s = net.connect({ path: '\0' + abstract });
    s.on('connect', () => { s.end('pwned\n'); resolve({ ok: true, verdict: 'succeeded' }); });
    s.on('error', (e) => resolve({ ok: false, code: e.code,
      verdict: ['ECONNREFUSED', 'EPERM'].includes(e.code) ? 'blocked' : 'unexpected' }));
  });
}

(async () => {
  const results = {};
  results['tcp 127.0.0.1'] = await tcp('127.0.0.1', 4);
  results['udp 127.0.0.1'] = await udp('udp4', '127.0.0.1');
  results['tcp6 ::1'] = await tcp('::1', 6);
  results['udp6 ::1'] = await udp('udp6', '::1');
  results['abstract unix @' + abstract] = await abstractUnix();
  finish('network', results);
})();
