'use strict';
// HKS Functions: the Node.js runtime launcher. Node built-in modules only.
//
//   node /hks/runtime/launcher.js oneshot   run one program, driven over the control socket on fd 3
//   node /hks/runtime/launcher.js serve     HTTP server for a Knative Functions `http` function
//
// oneshot (execute)
//   1. as soon as node is up, sends {"op":"ready","runtime":"node","version":...,"pid":...} on fd 3
//      (a SOCK_SEQPACKET unix socket: one JSON object per datagram);
//   2. waits for {"op":"go","entry":"main.js","argv":[...],"env":{...}}. EOF before "go": exit 0
//      silently. A malformed "go" or a missing entry: one line on stderr, exit 2;
//   3. closes fd 3, applies env, sets process.argv = [execPath, "/code/<entry>", ...argv],
//      chdir("/code") and runs the entry exactly as `node /code/<entry>` would (CommonJS or ESM,
//      require.main === module, uncaught exceptions and unhandled rejections printed by node
//      itself, exit code 1; process.exitCode / process.exit honoured).
//
//   How "exactly" is achieved: node prints an uncaught exception with the stack of the throw. Under
//   bare `node x.js` the frames below the program are node's own
//       at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:L:C)
//       at node:internal/main/run_main_module:L:C
//   To get the very same trace (and not launcher frames), "go" is read by a libuv pipe handle on
//   fd 3 whose read callback is called straight from the event loop (nothing else on the stack),
//   and that callback calls Module.runMain() from a one-line function compiled at the position
//   and under the name of the frame it stands in for (read from the launcher's own stack, since
//   node started the launcher the same way). An exception escaping it is reported by node as an
//   uncaught exception with the original throw site, exactly as in bare node. Waiting on fd 3 in
//   the event loop is the same "blocking" as a read: nothing else runs until "go" arrives. If the
//   internal pipe binding is ever unavailable, the launcher falls back to a blocking fs.readSync()
//   and a direct call (same behaviour; only the stack trace below runMain shows launcher frames).
//
// serve (functions): see serve() below; implements the faas-js-runtime contract used by the
// Knative Functions node `http` template (module.exports = { handle, init, shutdown, liveness,
// readiness, cors }, handle(context, body) returning { body, headers, statusCode } or a value).

const CONTROL_FD = 3;
const CODE_DIR = '/code';
const MAX_CONTROL_MESSAGE = 8 << 20; // bytes of one control datagram
const UV_EOF = -4095;
const UV_ECONNRESET = -104;

function fail(msg, code) {
  const fs = require('fs');
  try {
    fs.writeSync(2, `hks-launcher: ${msg}\n`);
  } catch (_) {
    // nowhere to report it
  }
  process.exit(code);
}

function readyMessage() {
  return JSON.stringify({ op: 'ready', runtime: 'node', version: process.versions.node, pid: process.pid });
}

// ------------------------------------------------------------------------------------- oneshot

function oneshot() {
  const fs = require('fs');
  const path = require('path');
  const vm = require('vm');
  const Module = require('module');
  const launcherFile = __filename;
  // Preloaded, not used: what node loads when a program first touches process.stdout/stderr
  // (a pipe or a file in the sandbox). Paid before "ready" instead of in the program's first
  // console.log (about 4 ms less from "go" to the first line of output).
  require('net');
  require('tty');

  // Position of node's own bottom frame, as this launcher was started the same way as a bare
  // `node /code/entry` (e.g. "node:internal/main/run_main_module:28:49").
  const bottom = bottomFrame();

  try {
    fs.writeSync(CONTROL_FD, readyMessage());
  } catch (e) {
    fail(`cannot write to the control socket (fd ${CONTROL_FD}): ${e.message}`, 2);
  }

  let handle = null;
  let buf = null;
  let nreadOf = null;

  // Validates "go", closes the control socket, applies env/argv/cwd. Returns the main path, or
  // exits. Runs inside the read callback; its frames are gone by the time user code runs.
  function prepare() {
    let n = nreadOf();
    if (n === 0) return undefined; // EAGAIN: nothing yet, keep waiting
    if (n < 0) {
      if (n === UV_EOF || n === UV_ECONNRESET) process.exit(0);
      fail(`reading the control socket failed (${n})`, 2);
    }
    if (handle !== null) {
      handle.readStop();
      handle.unref();
      handle.close();
      handle = null;
    } else {
      try {
        fs.closeSync(CONTROL_FD);
      } catch (_) {
        // already closed
      }
    }
    if (n >= buf.length) fail(`"go" message too large (more than ${buf.length - 1} bytes)`, 2);
    let msg;
    try {
      msg = JSON.parse(buf.toString('utf8', 0, n));
    } catch (e) {
      fail(`malformed "go" message: ${e.message}`, 2);
    }
    buf = null;
    const go = validateGo(msg);
    if (typeof go === 'string') fail(`malformed "go" message: ${go}`, 2);

    const codeDir = process.env.HKS_CODE_DIR || CODE_DIR;
    const main = path.resolve(codeDir, go.entry);
    let st = null;
    try {
      st = fs.statSync(main);
    } catch (e) {
      fail(`can't open file '${main}': ${e.code === 'ENOENT' ? 'No such file or directory' : e.message}`, 2);
    }
    if (!st.isFile() && !st.isDirectory()) fail(`can't open file '${main}': not a regular file`, 2);

    let pathsChanged = false;
    for (const k of Object.keys(go.env)) {
      process.env[k] = go.env[k];
      if (k === 'NODE_PATH' || k === 'HOME') pathsChanged = true;
    }
    if (pathsChanged) Module._initPaths();
    process.argv.length = 0;
    process.argv.push(process.execPath, main, ...go.argv);
    try {
      process.chdir(codeDir);
    } catch (e) {
      fail(`cannot chdir to ${codeDir}: ${e.message}`, 2);
    }
    // Leave no trace of the launcher in the program's module state.
    delete require.cache[launcherFile];
    delete process.mainModule;
    return main;
  }

  // The control socket as a libuv pipe handle (reads arrive in the event loop), if node's
  // internal pipe binding is there.
  let state = null;
  let kNread = 0;
  try {
    const pw = process.binding('pipe_wrap');
    const sw = process.binding('stream_wrap');
    if (typeof pw.Pipe === 'function' && sw.streamBaseState && typeof sw.kReadBytesOrError === 'number' &&
        typeof pw.Pipe.prototype.useUserBuffer === 'function') {
      const h = new pw.Pipe(pw.constants.SOCKET);
      if (h.open(CONTROL_FD) === 0) {
        handle = h;
        state = sw.streamBaseState;
        kNread = sw.kReadBytesOrError;
      } else {
        h.close();
      }
    }
  } catch (_) {
    handle = null;
  }

  // Under the fallback the launcher's frames stay on the stack anyway: no stand-in frame then.
  const run = makeRunner(vm, Module, prepare, handle !== null ? bottom : null);
  buf = Buffer.allocUnsafe(MAX_CONTROL_MESSAGE);
  if (handle !== null) {
    handle.useUserBuffer(buf);
    nreadOf = () => state[kNread];
    handle.onread = run;
    const err = handle.readStart();
    if (err !== 0) fail(`cannot read the control socket (${err})`, 2);
    return; // "go" arrives in the event loop
  }

  // Fallback: block in read(2).
  let n;
  for (;;) {
    try {
      n = fs.readSync(CONTROL_FD, buf, 0, buf.length, null);
      break;
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if (e.code === 'EINTR') continue;
      if (e.code === 'ECONNRESET') process.exit(0);
      fail(`reading the control socket failed: ${e.message}`, 2);
    }
  }
  nreadOf = () => (n === 0 ? UV_EOF : n);
  run();
}

// The frame node would show below Module.runMain for `node FILE` ({file, line, col}), read from
// the launcher's own stack (node started it through the same code path).
function bottomFrame() {
  const stack = String(new Error().stack).split('\n');
  const last = stack[stack.length - 1];
  const m = /^\s+at (?:.* \()?(node:internal\/[^\s()]+):(\d+):(\d+)\)?$/.exec(last);
  if (!m) return null;
  return { file: m[1], line: Number(m[2]), col: Number(m[3]) };
}

// A function f() that calls prepare() and then Module.runMain(main), compiled so that its frame
// prints exactly like node's bottom frame; bound to `undefined` so that it prints as top-level code.
function makeRunner(vm, Module, prepare, bottom) {
  const head = "(function (prepare, M) { 'use strict'; return function () { " +
    'const main = prepare(); if (main === undefined) return; M.';
  let script;
  if (bottom && bottom.line >= 2 && bottom.col >= 1) {
    const src = head + '\n' + ' '.repeat(bottom.col - 1) + 'runMain(main); }; })';
    script = new vm.Script(src, { filename: bottom.file, lineOffset: bottom.line - 2 });
  } else {
    script = new vm.Script(head + 'runMain(main); }; })', { filename: __filename });
  }
  return script.runInThisContext()(prepare, Module).bind(undefined);
}

// Returns {entry, argv, env} or a string saying what is wrong.
function validateGo(msg) {
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return 'not a JSON object';
  if (msg.op !== 'go') return `expected op "go", got ${JSON.stringify(msg.op)}`;
  const entry = msg.entry;
  if (typeof entry !== 'string' || entry === '') return '"entry" must be a non-empty string';
  if (entry.startsWith('/')) return '"entry" must be relative to /code';
  if (entry.includes('\0')) return '"entry" contains a NUL byte';
  if (entry.split(/[/\\]/).includes('..')) return '"entry" must not contain ".."';
  let argv = msg.argv;
  if (argv === undefined || argv === null) argv = [];
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) return '"argv" must be an array of strings';
  let env = msg.env;
  if (env === undefined || env === null) env = {};
  if (typeof env !== 'object' || Array.isArray(env)) return '"env" must be an object';
  for (const k of Object.keys(env)) {
    if (k === '' || k.includes('=') || k.includes('\0')) return `bad environment variable name ${JSON.stringify(k)}`;
    if (typeof env[k] !== 'string') return `environment variable ${k} must be a string`;
    if (env[k].includes('\0')) return `environment variable ${k} contains a NUL byte`;
  }
  return { entry, argv, env };
}

// --------------------------------------------------------------------------------------- serve

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const DEFAULT_MAX_BODY = 10 << 20;
const SHUTDOWN_GRACE_MS = 10000;
const ALLOW_METHODS = 'OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH';
// Context fields that query parameters must not overwrite (faas-js-runtime copies every query
// parameter onto the context; here they never replace these).
const RESERVED_CONTEXT_KEYS = new Set(['body', 'query', 'headers', 'method', 'httpVersion',
  'httpVersionMajor', 'httpVersionMinor', 'contentType', 'rawBody', 'log', 'cloudevent',
  'cloudEventResponse', 'constructor', '__proto__', 'prototype']);

function parseSize(text, fallback) {
  if (text === undefined || text === '') return fallback;
  const m = /^\s*(\d+)\s*([kmg]?)i?b?\s*$/i.exec(String(text));
  if (!m) return fallback;
  const mult = { '': 1, k: 1024, m: 1024 * 1024, g: 1024 * 1024 * 1024 }[m[2].toLowerCase()];
  return Number(m[1]) * mult;
}

function makeLogger(minLevel, bindings, util, os) {
  const base = { pid: process.pid, hostname: os.hostname() };
  const noop = () => {};
  const logger = {};
  const write = (level, args) => {
    const rec = Object.assign({ level, time: Date.now() }, base, bindings);
    let rest = args;
    const first = args[0];
    if (first instanceof Error) {
      rec.err = serializeError(first);
      rest = args.slice(1);
      if (rest.length === 0) rest = [first.message];
    } else if (first !== null && typeof first === 'object' && !Array.isArray(first) && args.length > 1) {
      for (const k of Object.keys(first)) {
        if (!(k in rec)) rec[k] = first[k] instanceof Error ? serializeError(first[k]) : first[k];
      }
      rest = args.slice(1);
    }
    if (rest.length > 0) rec.msg = util.format(...rest);
    let line;
    try {
      line = JSON.stringify(rec);
    } catch (_) {
      line = JSON.stringify({ level, time: rec.time, pid: rec.pid, hostname: rec.hostname, msg: util.format(...args) });
    }
    process.stderr.write(line + '\n');
  };
  for (const name of Object.keys(LEVELS)) {
    const value = LEVELS[name];
    logger[name] = value >= minLevel ? (...args) => write(value, args) : noop;
  }
  logger.level = Object.keys(LEVELS).find((k) => LEVELS[k] === minLevel) || 'silent';
  logger.isLevelEnabled = (name) => (LEVELS[name] || Infinity) >= minLevel;
  logger.child = (more) => makeLogger(minLevel, Object.assign({}, bindings, more), util, os);
  return logger;
}

function serializeError(err) {
  const out = { type: err.name || 'Error', message: String(err.message), stack: String(err.stack) };
  if (err.code !== undefined) out.code = err.code;
  return out;
}

// A subset of `qs.parse` (what faas-js-runtime uses for application/x-www-form-urlencoded):
// a=1&a=2 -> {a:['1','2']}, a[b]=c -> {a:{b:'c'}}, a[]=x -> {a:['x']}, a[0]=x -> {a:['x']},
// depth 5, array indexes up to 20, 1000 parameters, "+" is a space, prototype keys ignored.
function qsParse(str) {
  const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
  const decode = (s) => {
    const t = s.replace(/\+/g, ' ');
    try {
      return decodeURIComponent(t);
    } catch (_) {
      return t;
    }
  };
  const result = {};
  const parts = str.split('&', 1000);
  for (const part of parts) {
    if (part === '') continue;
    const bracketEq = part.indexOf(']=');
    const pos = bracketEq === -1 ? part.indexOf('=') : bracketEq + 1;
    const key = decode(pos === -1 ? part : part.slice(0, pos));
    const val = pos === -1 ? '' : decode(part.slice(pos + 1));
    if (key === '') continue;
    // split "a[b][c]" into segments, at most 5 levels deep (the rest is one literal segment)
    const segs = [];
    const open = key.indexOf('[');
    if (open === -1 || key.indexOf(']', open) === -1) {
      segs.push(key);
    } else {
      if (open > 0) segs.push(key.slice(0, open));
      const re = /\[([^[\]]*)\]/g;
      re.lastIndex = open;
      let m;
      let end = open;
      while ((m = re.exec(key)) !== null && m.index === end && segs.length <= 5) {
        segs.push(segs.length === 0 ? m[1] : m[0]);
        end = re.lastIndex;
      }
      if (segs.length === 0) segs.push(key);
      const restOpen = key.indexOf('[', end);
      if (restOpen !== -1) segs.push('[' + key.slice(restOpen) + ']');
    }
    if (has(Object.prototype, segs[0])) continue;
    let leaf = val;
    let skip = false;
    for (let i = segs.length - 1; i >= 1; i--) {
      const seg = segs[i];
      if (seg === '[]') {
        leaf = [].concat(leaf);
        continue;
      }
      const clean = seg.startsWith('[') && seg.endsWith(']') ? seg.slice(1, -1) : seg;
      const index = Number.parseInt(clean, 10);
      if (String(index) === clean && index >= 0 && index <= 20) {
        const arr = [];
        arr[index] = leaf;
        leaf = arr;
      } else {
        if (clean === '__proto__' || has(Object.prototype, clean)) {
          skip = true;
          break;
        }
        leaf = { [clean]: leaf };
      }
    }
    if (skip) continue;
    result[segs[0]] = has(result, segs[0]) ? qsMerge(result[segs[0]], leaf) : leaf;
  }
  return qsCompact(result);
}

function qsMerge(target, source) {
  const isObj = (v) => v !== null && typeof v === 'object';
  if (!isObj(source)) {
    if (Array.isArray(target)) {
      target.push(source);
      return target;
    }
    return [target, source];
  }
  if (!isObj(target)) return [target].concat(source);
  if (Array.isArray(target) && !Array.isArray(source)) target = Object.assign({}, target);
  if (Array.isArray(target) && Array.isArray(source)) {
    source.forEach((item, i) => {
      if (i in target) {
        if (isObj(target[i]) && isObj(item)) target[i] = qsMerge(target[i], item);
        else target.push(item);
      } else {
        target[i] = item;
      }
    });
    return target;
  }
  for (const k of Object.keys(source)) {
    target[k] = Object.prototype.hasOwnProperty.call(target, k) ? qsMerge(target[k], source[k]) : source[k];
  }
  return target;
}

function qsCompact(value) {
  if (Array.isArray(value)) return value.filter((v, i) => i in value).map(qsCompact);
  if (value !== null && typeof value === 'object') {
    for (const k of Object.keys(value)) value[k] = qsCompact(value[k]);
  }
  return value;
}

// JSON.parse that refuses "__proto__" keys and constructor.prototype (as fastify's
// secure-json-parse does by default).
function parseJSON(text) {
  const value = JSON.parse(text);
  if (/__proto__|constructor|\\u00/.test(text)) {
    const stack = [value];
    while (stack.length > 0) {
      const v = stack.pop();
      if (v === null || typeof v !== 'object') continue;
      if (Object.prototype.hasOwnProperty.call(v, '__proto__')) {
        throw new SyntaxError('Object contains forbidden prototype property');
      }
      if (Object.prototype.hasOwnProperty.call(v, 'constructor') && v.constructor !== null &&
          typeof v.constructor === 'object' && Object.prototype.hasOwnProperty.call(v.constructor, 'prototype')) {
        throw new SyntaxError('Object contains forbidden prototype property');
      }
      for (const k of Object.keys(v)) stack.push(v[k]);
    }
  }
  return value;
}

// A minimal CloudEvent (binary and structured content modes, spec 1.0 and 0.3).
class CloudEvent {
  constructor(attrs) {
    Object.assign(this, attrs);
    if (this.id === undefined) this.id = require('crypto').randomUUID();
    if (this.specversion === undefined) this.specversion = '1.0';
    if (this.time === undefined) this.time = new Date().toISOString();
    if (this.datacontenttype === undefined && this.data !== null && typeof this.data === 'object' &&
        !Buffer.isBuffer(this.data)) {
      this.datacontenttype = 'application/json';
    }
  }

  validate() {
    if (this.specversion !== '1.0' && this.specversion !== '0.3') {
      const e = new Error(`invalid spec version ${this.specversion}`);
      e.statusCode = 406;
      throw e;
    }
    for (const k of ['id', 'source', 'type']) {
      if (typeof this[k] !== 'string' || this[k] === '') {
        const e = new Error(`invalid CloudEvent: "${k}" is required`);
        e.statusCode = 400;
        throw e;
      }
    }
    return true;
  }

  toJSON() {
    return Object.assign({}, this);
  }
}

class CloudEventResponse {
  constructor(data) {
    this.attrs = { data };
  }

  version(v) {
    this.attrs.specversion = v;
    return this;
  }

  id(v) {
    this.attrs.id = v;
    return this;
  }

  type(v) {
    this.attrs.type = v;
    return this;
  }

  source(v) {
    this.attrs.source = v;
    return this;
  }

  response() {
    return new CloudEvent(this.attrs);
  }
}

class Context {
  constructor(req, body, query, log, rawBody) {
    this.body = body;
    this.query = { ...query };
    this.headers = { ...req.headers };
    this.method = req.method;
    this.httpVersion = req.httpVersion;
    this.httpVersionMajor = req.httpVersionMajor;
    this.httpVersionMinor = req.httpVersionMinor;
    this.contentType = req.headers['content-type'];
    this.rawBody = rawBody;
    for (const k of Object.keys(query)) {
      if (!RESERVED_CONTEXT_KEYS.has(k)) this[k] = query[k];
    }
    this.log = log;
  }

  cloudEventResponse(data) {
    return new CloudEventResponse(data);
  }
}

function mediaType(contentType) {
  if (typeof contentType !== 'string') return '';
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

function isStream(v) {
  return v !== null && typeof v === 'object' && typeof v.pipe === 'function' && typeof v.on === 'function';
}

function isBinary(v) {
  return Buffer.isBuffer(v) || ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
}

function looksLikeCloudEvent(v) {
  return v instanceof CloudEvent || (v !== null && typeof v === 'object' && v.constructor &&
    v.constructor.name === 'CloudEvent');
}

function httpError(statusCode, message, code) {
  const e = new Error(message);
  e.statusCode = statusCode;
  if (code) e.fastifyCode = code;
  return e;
}

async function serve() {
  const fs = require('fs');
  const path = require('path');
  const http = require('http');
  const os = require('os');
  const util = require('util');
  const querystring = require('querystring');
  const { pathToFileURL } = require('url');

  const levelName = String(process.env.FUNC_LOG_LEVEL || 'info').toLowerCase();
  const log = makeLogger(levelName in LEVELS ? LEVELS[levelName] : (levelName === 'silent' ? Infinity : LEVELS.info),
    {}, util, os);
  const maxBody = parseSize(process.env.HKS_MAX_BODY, parseSize(process.env.FUNC_BODY_LIMIT, DEFAULT_MAX_BODY));
  const includeRaw = Boolean(process.env.FUNC_INCLUDE_RAW);
  const funcDir = path.resolve(process.env.HKS_FUNCTION_DIR || CODE_DIR);

  process.on('uncaughtException', (err) => log.error(err, 'uncaught exception (the server keeps running)'));
  process.on('unhandledRejection', (err) => {
    if (err instanceof Error) log.error(err, 'unhandled promise rejection (the server keeps running)');
    else log.error('unhandled promise rejection (the server keeps running): %s', util.inspect(err));
  });

  // ---- load the function
  let fn;
  try {
    process.chdir(funcDir);
    fn = await loadFunction(funcDir, fs, path, pathToFileURL);
  } catch (err) {
    log.fatal(err, `cannot load the function from ${funcDir}`);
    process.exit(1);
  }
  let handler;
  let hooks = {};
  if (typeof fn === 'function') {
    handler = fn;
  } else if (fn !== null && typeof fn === 'object' && typeof fn.handle === 'function') {
    handler = fn.handle;
    hooks = fn;
  } else {
    log.fatal(`${funcDir}: the function must export a handle function (module.exports = { handle })`);
    process.exit(1);
  }
  const hook = (name) => (typeof hooks[name] === 'function' ? hooks[name] : null);
  if (hook('init')) {
    try {
      await hook('init').call(hooks);
    } catch (err) {
      log.fatal(err, 'the function\'s init() failed');
      process.exit(1);
    }
  }
  const livenessPath = (hook('liveness') && typeof hook('liveness').path === 'string' && hook('liveness').path) ||
    process.env.LIVENESS_URL || '/health/liveness';
  const readinessPath = (hook('readiness') && typeof hook('readiness').path === 'string' && hook('readiness').path) ||
    process.env.READINESS_URL || '/health/readiness';
  const scope = Object.freeze({});

  let draining = false;
  let reqCounter = 0;
  let inFlight = 0;
  const open = new Set(); // responses not yet closed

  const server = http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    const reqLog = log.child({ reqId: 'req-' + (++reqCounter).toString(36) });
    inFlight++;
    open.add(res);
    let health = false;
    res.on('close', () => {
      inFlight--;
      open.delete(res);
      // while stopping, a keep-alive connection whose last response is done is closed
      if (draining) setImmediate(() => server.closeIdleConnections());
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const fields = { req: { method: req.method, url: req.url }, res: { statusCode: res.statusCode },
        responseTime: Math.round(ms * 1000) / 1000 };
      if (!res.writableFinished) reqLog.warn(fields, 'request aborted by the client');
      else if (health) reqLog.debug(fields, 'request completed');
      else reqLog.info(fields, 'request completed');
    });
    if (draining) res.shouldKeepAlive = false;
    const url = req.url || '/';
    const qi = url.indexOf('?');
    const pathname = qi === -1 ? url : url.slice(0, qi);
    const search = qi === -1 ? '' : url.slice(qi + 1);
    if ((req.method === 'GET' || req.method === 'HEAD') && (pathname === livenessPath || pathname === readinessPath)) {
      health = true;
      const which = pathname === livenessPath ? 'liveness' : 'readiness';
      if (which === 'readiness' && draining) {
        sendPlain(res, 503, 'Shutting down');
        return;
      }
      healthCheck(hook(which), which, req, res, reqLog, querystring.parse(search));
      return;
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'content-type': 'application/json; charset=utf-8', 'access-control-allow-methods': ALLOW_METHODS,
        'access-control-allow-origin': '*', 'access-control-allow-headers': '*' });
      res.end();
      return;
    }
    handleInvocation(req, res, reqLog, search).catch((err) => {
      reqLog.error(err, 'internal error');
      if (!res.headersSent) sendPlain(res, 500, 'Internal Server Error');
      else res.destroy();
    });
  });

  server.keepAliveTimeout = 72000; // as faas-js-runtime (fastify): longer than usual proxy idle timeouts

  function corsOrigin(req) {
    const cors = hook('cors');
    if (!cors) return '*';
    try {
      const allowed = cors.call(hooks);
      const origin = req.headers.origin;
      return Array.isArray(allowed) && origin !== undefined && allowed.includes(origin) ? origin : null;
    } catch (err) {
      log.error(err, 'the function\'s cors() failed');
      return null;
    }
  }

  async function handleInvocation(req, res, reqLog, search) {
    const query = querystring.parse(search);
    let raw;
    try {
      raw = await readBody(req, res);
    } catch (err) {
      if (err.statusCode === 413) {
        reqLog.warn(`request body larger than ${maxBody} bytes`);
        res.shouldKeepAlive = false;
        sendJSONError(res, 413, 'Payload Too Large', 'Request body is too large', 'FST_ERR_CTP_BODY_TOO_LARGE');
      }
      // else: the client went away
      return;
    }
    let body;
    let ce = null;
    try {
      body = parseBody(req, raw);
      ce = toCloudEvent(req, body, raw);
    } catch (err) {
      const status = err.statusCode || 400;
      sendJSONError(res, status, status === 406 ? 'Not Acceptable' : 'Bad Request', err.message, err.fastifyCode);
      return;
    }
    const context = new Context(req, body, query, reqLog, includeRaw && raw !== undefined ? raw.toString('utf8') : undefined);
    if (ce) context.cloudevent = ce;
    let ret;
    try {
      ret = await handler.call(scope, context, ce || body);
    } catch (err) {
      reqLog.error(err instanceof Error ? err : { thrown: util.inspect(err) }, 'Error processing user function');
      const code = [err && err.code, err && err.statusCode].find((c) => Number.isInteger(c) && c >= 400 && c <= 599) || 500;
      const message = err instanceof Error ? err.message : String(err);
      sendPlain(res, code, message.length > 1024 ? message.slice(0, 1024) : message);
      return;
    }
    sendResult(res, ret, {
      'content-type': 'application/json; charset=utf-8',
      'access-control-allow-methods': ALLOW_METHODS,
      'access-control-allow-origin': corsOrigin(req),
    }, Boolean(ce), reqLog);
  }

  function readBody(req, res) {
    return new Promise((resolve, reject) => {
      if (req.method === 'GET' || req.method === 'HEAD') {
        req.resume();
        resolve(undefined);
        return;
      }
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > maxBody) {
        req.pause();
        reject(httpError(413));
        return;
      }
      const chunks = [];
      let size = 0;
      let over = false;
      req.on('data', (chunk) => {
        if (over) return;
        size += chunk.length;
        if (size > maxBody) {
          over = true;
          chunks.length = 0;
          reject(httpError(413));
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (!over) resolve(size === 0 ? undefined : Buffer.concat(chunks, size));
      });
      req.on('aborted', () => reject(httpError(499, 'client closed the request')));
      req.on('error', (err) => reject(err));
    });
  }

  function parseBody(req, raw) {
    const type = mediaType(req.headers['content-type']);
    if (raw === undefined) {
      if (type === 'application/json' && req.method !== 'GET' && req.method !== 'HEAD') {
        throw httpError(400, 'Body cannot be empty when content-type is set to \'application/json\'',
          'FST_ERR_CTP_EMPTY_JSON_BODY');
      }
      return undefined;
    }
    switch (type) {
      case 'application/json':
        try {
          return parseJSON(raw.toString('utf8'));
        } catch (err) {
          throw httpError(400, err.message, 'FST_ERR_CTP_INVALID_JSON_BODY');
        }
      case 'text/plain':
      case 'application/cloudevents+json':
        return raw.toString('utf8');
      case 'application/x-www-form-urlencoded':
        return qsParse(raw.toString('utf8'));
      default:
        return raw;
    }
  }

  function toCloudEvent(req, body, raw) {
    const h = req.headers;
    const type = mediaType(h['content-type']);
    if (type === 'application/cloudevents+json') {
      let obj;
      try {
        obj = parseJSON(raw === undefined ? '' : raw.toString('utf8'));
      } catch (err) {
        throw httpError(400, `invalid structured CloudEvent: ${err.message}`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw httpError(400, 'invalid structured CloudEvent');
      const attrs = Object.assign({}, obj);
      if (typeof attrs.data_base64 === 'string') {
        attrs.data = Buffer.from(attrs.data_base64, 'base64');
        delete attrs.data_base64;
      }
      const ev = new CloudEvent(attrs);
      ev.validate();
      return ev;
    }
    if (h['ce-specversion'] === undefined) return null;
    const attrs = {};
    for (const k of Object.keys(h)) {
      if (k.startsWith('ce-') && k.length > 3) attrs[k.slice(3)] = String(h[k]);
    }
    if (h['content-type'] !== undefined) attrs.datacontenttype = h['content-type'];
    attrs.data = body;
    const ev = new CloudEvent(attrs);
    ev.validate();
    return ev;
  }

  function sendPlain(res, status, text) {
    res.statusCode = status;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.setHeader('content-length', Buffer.byteLength(text));
    res.end(text);
  }

  function sendJSONError(res, status, error, message, code) {
    const body = { statusCode: status };
    if (code) body.code = code;
    body.error = error;
    body.message = message;
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.setHeader('content-length', Buffer.byteLength(text));
    res.end(text);
  }

  function writeResponse(res, status, headers, payload, statusMessage, reqLog) {
    let data;
    try {
      const code = Number(status);
      if (!Number.isInteger(code) || code < 100 || code > 599) throw new RangeError(`invalid statusCode ${util.inspect(status)}`);
      if (code === 204 || code === 304) delete headers['content-type'];
      for (const k of Object.keys(headers)) {
        if (headers[k] === null || headers[k] === undefined) continue;
        res.setHeader(k, typeof headers[k] === 'number' || Array.isArray(headers[k]) ? headers[k] : String(headers[k]));
      }
      res.statusCode = code;
      if (typeof statusMessage === 'string' && statusMessage !== '' && !/[\r\n]/.test(statusMessage)) {
        res.statusMessage = statusMessage;
      }
      if (isStream(payload)) {
        payload.on('error', (err) => {
          reqLog.error(err, 'the response stream failed');
          res.destroy(err);
        });
        payload.pipe(res);
        return;
      }
      if (payload === undefined) data = undefined;
      else if (typeof payload === 'string') data = payload;
      else if (Buffer.isBuffer(payload)) data = payload;
      else if (ArrayBuffer.isView(payload)) data = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      else if (payload instanceof ArrayBuffer) data = Buffer.from(payload);
      else {
        data = JSON.stringify(payload);
        if (data === undefined) data = '';
      }
      if (data !== undefined && !res.hasHeader('content-length') && !res.hasHeader('transfer-encoding') &&
          code !== 204 && code !== 304) {
        res.setHeader('content-length', Buffer.byteLength(data));
      }
      res.end(data);
    } catch (err) {
      reqLog.error(err, 'cannot send the function\'s response');
      if (!res.headersSent) {
        for (const k of res.getHeaderNames()) res.removeHeader(k);
        res.statusMessage = '';
        sendPlain(res, 500, 'Internal Server Error: invalid response from the function');
      } else {
        res.destroy();
      }
    }
  }

  // The handler's return value -> the response (faas-js-runtime lib/invoker.js semantics).
  function sendResult(res, ret, headers, isCloudEventCall, reqLog) {
    if (!ret) {
      delete headers['content-type'];
      writeResponse(res, 204, headers, undefined, undefined, reqLog);
      return;
    }
    if (typeof ret === 'string') {
      headers['content-type'] = 'text/plain; charset=utf-8';
      writeResponse(res, 200, headers, ret, undefined, reqLog);
      return;
    }
    if (typeof ret !== 'object' && typeof ret !== 'function') {
      writeResponse(res, 200, headers, ret, undefined, reqLog);
      return;
    }
    if (isCloudEventCall && looksLikeCloudEvent(ret)) {
      const attrs = typeof ret.toJSON === 'function' ? ret.toJSON() : Object.assign({}, ret);
      let data = attrs.data;
      if (data === undefined && typeof attrs.data_base64 === 'string') data = Buffer.from(attrs.data_base64, 'base64');
      for (const k of Object.keys(attrs)) {
        if (k === 'data' || k === 'data_base64' || attrs[k] === undefined || attrs[k] === null) continue;
        if (k === 'datacontenttype') headers['content-type'] = String(attrs[k]);
        else headers['ce-' + k] = attrs[k] instanceof Date ? attrs[k].toISOString() : String(attrs[k]);
      }
      writeResponse(res, 200, headers, data, undefined, reqLog);
      return;
    }
    if (isBinary(ret) || isStream(ret)) {
      headers['content-type'] = 'application/octet-stream';
      writeResponse(res, 200, headers, ret, undefined, reqLog);
      return;
    }
    let userType = false;
    if (ret.headers !== null && typeof ret.headers === 'object') {
      for (const k of Object.keys(ret.headers)) {
        const lk = k.toLowerCase();
        headers[lk] = ret.headers[k];
        if (lk === 'content-type') userType = true;
      }
    }
    const status = ret.statusCode ? ret.statusCode : 200;
    let payload;
    if (ret.body !== undefined) {
      payload = ret.body;
      if (!userType) {
        if (typeof payload === 'string') headers['content-type'] = 'text/plain; charset=utf-8';
        else if (isBinary(payload) || isStream(payload)) headers['content-type'] = 'application/octet-stream';
        else headers['content-type'] = 'application/json; charset=utf-8';
      }
    } else {
      headers['content-type'] = 'application/json; charset=utf-8';
      payload = ret;
    }
    writeResponse(res, status, headers, payload, ret.statusMessage, reqLog);
  }

  // liveness/readiness hooks are called like fastify route handlers: (request, reply). They may
  // use reply.code()/header()/send(), or return a value: a string (200 text), true (200 OK),
  // false (503), an object like a handler's return ({ statusCode, body, headers }), undefined (200 OK).
  function healthCheck(fnHook, which, req, res, reqLog, query) {
    if (!fnHook) {
      sendPlain(res, 200, 'OK');
      return;
    }
    let sent = false;
    let status = 200;
    const replyHeaders = {};
    const reply = {
      raw: res,
      get sent() {
        return sent;
      },
      get statusCode() {
        return status;
      },
      set statusCode(v) {
        status = v;
      },
      code(c) {
        status = c;
        return reply;
      },
      status(c) {
        status = c;
        return reply;
      },
      header(k, v) {
        replyHeaders[String(k).toLowerCase()] = v;
        return reply;
      },
      headers(obj) {
        for (const k of Object.keys(obj || {})) replyHeaders[k.toLowerCase()] = obj[k];
        return reply;
      },
      type(t) {
        replyHeaders['content-type'] = t;
        return reply;
      },
      send(payload) {
        if (sent) return reply;
        sent = true;
        const headers = Object.assign({}, replyHeaders);
        if (headers['content-type'] === undefined) {
          if (payload === undefined || typeof payload === 'string') headers['content-type'] = 'text/plain; charset=utf-8';
          else if (isBinary(payload) || isStream(payload)) headers['content-type'] = 'application/octet-stream';
          else headers['content-type'] = 'application/json; charset=utf-8';
        }
        writeResponse(res, status, headers, payload, undefined, reqLog);
        return reply;
      },
    };
    const request = { raw: req, headers: req.headers, method: req.method, url: req.url, query, log: reqLog };
    const failed = (err) => {
      reqLog.error(err instanceof Error ? err : { thrown: util.inspect(err) }, `the ${which} check failed`);
      if (!sent) {
        sent = true;
        sendPlain(res, 500, `${which} check failed`);
      }
    };
    const settle = (value) => {
      if (sent) return;
      if (value === undefined || value === true) reply.send('OK');
      else if (value === false) reply.code(503).send(which === 'liveness' ? 'Not alive' : 'Not ready');
      else if (typeof value === 'string') reply.send(value);
      else if (value !== null && typeof value === 'object' && !isBinary(value) &&
               ('statusCode' in value || 'body' in value)) {
        sent = true;
        sendResult(res, value, { 'content-type': 'text/plain; charset=utf-8' }, false, reqLog);
      } else {
        reply.send(value);
      }
    };
    let ret;
    try {
      ret = fnHook.call(hooks, request, reply);
    } catch (err) {
      failed(err);
      return;
    }
    if (ret !== null && typeof ret === 'object' && typeof ret.then === 'function') {
      ret.then(settle, failed);
    } else if (ret === undefined) {
      // a callback-style check may call reply.send() later
      setImmediate(() => {
        if (!sent) {
          const timer = setTimeout(() => {
            if (!sent) failed(new Error('no reply within 5 s'));
          }, 5000);
          res.on('close', () => clearTimeout(timer));
        }
      });
    } else {
      settle(ret);
    }
  }

  // ---- listen
  await new Promise((resolve) => {
    server.once('error', (err) => {
      log.fatal(err, 'cannot listen');
      process.exit(1);
    });
    let where;
    if (process.env.HKS_LISTEN_FD) {
      const fd = Number(process.env.HKS_LISTEN_FD);
      if (!Number.isInteger(fd) || fd < 0) {
        log.fatal(`HKS_LISTEN_FD=${process.env.HKS_LISTEN_FD} is not a file descriptor`);
        process.exit(1);
      }
      where = `fd ${fd}`;
      server.listen({ fd }, () => resolve(where));
    } else if (process.env.HKS_SOCKET) {
      const sock = process.env.HKS_SOCKET;
      try {
        if (fs.lstatSync(sock).isSocket()) fs.unlinkSync(sock);
      } catch (_) {
        // not there
      }
      where = sock;
      server.listen(sock, () => resolve(where));
    } else {
      const port = process.env.PORT ? Number(process.env.PORT) : 8080;
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        log.fatal(`PORT=${process.env.PORT} is not a port number`);
        process.exit(1);
      }
      where = `port ${port}`;
      server.listen(port, () => resolve(where));
    }
  }).then((where) => {
    log.info(`node ${process.versions.node} serving ${funcDir} on ${where}`);
  });

  if (process.env.HKS_CONTROL_FD) {
    try {
      fs.writeSync(Number(process.env.HKS_CONTROL_FD), readyMessage());
    } catch (err) {
      log.error(err, `cannot write the ready message to fd ${process.env.HKS_CONTROL_FD}`);
    }
  }

  // ---- graceful shutdown: stop accepting, finish in-flight requests (grace 10 s), call the
  // function's shutdown hook, exit 0.
  let finished = false;
  const finish = async (why) => {
    if (finished) return;
    finished = true;
    log.info(`stopped (${why})`);
    const shutdown = hook('shutdown');
    if (shutdown) {
      try {
        await shutdown.call(hooks);
      } catch (err) {
        log.error(err, 'the function\'s shutdown() failed');
      }
    }
    process.exit(0);
  };
  const onSignal = (sig) => {
    if (draining) return;
    draining = true;
    log.info(`${sig}: stopping; ${inFlight} request(s) in flight`);
    for (const res of open) {
      if (!res.headersSent) res.shouldKeepAlive = false;
    }
    const timer = setTimeout(() => {
      server.closeAllConnections();
      finish(`grace period of ${SHUTDOWN_GRACE_MS / 1000} s over`);
    }, SHUTDOWN_GRACE_MS);
    server.close(() => {
      clearTimeout(timer);
      finish('all connections closed');
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // hks-sandbox answers SIGTERM by killing the sandbox: a host stops a sandboxed function
  // gracefully with {"op":"stop"} on the control socket, as the python launcher takes it
  if (process.env.HKS_CONTROL_FD) watchControl(Number(process.env.HKS_CONTROL_FD), () => onSignal('stop'));
}

// Read {"op":"stop"} datagrams from the control socket in the event loop (a libuv pipe handle,
// as one-shot mode reads "go"); without node's internal pipe binding only SIGTERM stops.
function watchControl(fd, onStop) {
  let h = null;
  try {
    const pw = process.binding('pipe_wrap');
    const sw = process.binding('stream_wrap');
    h = new pw.Pipe(pw.constants.SOCKET);
    if (h.open(fd) !== 0) {
      h.close();
      return;
    }
    const buf = Buffer.allocUnsafe(4096); // {"op":"stop"} and nothing bigger
    h.useUserBuffer(buf);
    h.onread = () => {
      const n = sw.streamBaseState[sw.kReadBytesOrError];
      if (n <= 0) {
        h.readStop();
        h.close();
        return;
      }
      let msg = null;
      try {
        msg = JSON.parse(buf.toString('utf8', 0, n));
      } catch (_) {
        // not a message of ours
      }
      if (msg && msg.op === 'stop') onStop();
    };
    if (h.readStart() !== 0) h.close();
    else h.unref(); // the control socket alone keeps no one alive
  } catch (_) {
    if (h) h.close();
  }
}

// The function module of dir: package.json "main", else index.js / index.mjs / index.cjs.
async function loadFunction(dir, fs, path, pathToFileURL) {
  const candidates = [];
  let pkg = null;
  try {
    pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  } catch (_) {
    pkg = null;
  }
  if (process.env.HKS_FUNCTION_ENTRY) candidates.push(process.env.HKS_FUNCTION_ENTRY);
  if (pkg && typeof pkg.main === 'string' && pkg.main !== '') candidates.push(pkg.main);
  candidates.push('index.js', 'index.mjs', 'index.cjs');
  let file = null;
  for (const c of candidates) {
    const p = path.resolve(dir, c);
    try {
      if (fs.statSync(p).isFile()) {
        file = p;
        break;
      }
    } catch (_) {
      // next
    }
  }
  if (file === null) throw new Error(`no function module in ${dir} (tried ${candidates.join(', ')})`);
  if (isESM(file, fs, path)) {
    const ns = await import(pathToFileURL(file).href);
    if (typeof ns.handle === 'function') return ns;
    if (ns.default !== undefined) return ns.default;
    return ns;
  }
  return require(file);
}

function isESM(file, fs, path) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  let dir = path.dirname(file);
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module';
      } catch (_) {
        return false;
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return false;
    dir = up;
  }
}

// ---------------------------------------------------------------------------------------- main

const mode = process.argv[2];
if (mode === 'oneshot') {
  oneshot();
} else if (mode === 'serve') {
  serve().catch((err) => {
    process.stderr.write(`hks-launcher: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
} else {
  fail(`usage: node ${require('path').basename(__filename)} oneshot|serve`, 2);
}
