// Load generator for bench/load.sh (make bench-load): CLIENTS concurrent clients, each on its own
// keep-alive connection, for SECONDS, mixing the operations of hksd's API. Node built-ins only.
//
//   node bench/load.mjs URL TOKEN RESIDENTS_JSON CRONJOB_ID > result.json
//   LOAD_CLIENTS=200 LOAD_SECONDS=60 LOAD_SOURCES=8 LOAD_TIMEOUT_MS=120000
//
// Every answer is counted by operation and status; a request that got no HTTP answer (refused,
// reset, timed out) is counted under status "conn:<reason>". Latency is from the request's start
// to the answer's last byte. Clients are spread over LOAD_SOURCES loopback source addresses
// (127.0.0.2, 127.0.0.3, ...): hksd limits connections per address (http.per_ip_connections,
// 64), and 200 agents do not come from one address. Each client deletes what it deployed, so
// the daemon holds no function of the run afterwards.
import http from 'node:http';

const [url, token, residentsJson, cronjobId] = process.argv.slice(2);
if (!url || !token || !residentsJson) {
    console.error('usage: node load.mjs URL TOKEN RESIDENTS_JSON [CRONJOB_ID]');
    process.exit(2);
}
const CLIENTS = Number(process.env.LOAD_CLIENTS || 200);
const SECONDS = Number(process.env.LOAD_SECONDS || 60);
const SOURCES = Number(process.env.LOAD_SOURCES || 8);
const TIMEOUT_MS = Number(process.env.LOAD_TIMEOUT_MS || 120000);
const residents = JSON.parse(residentsJson); // [{id, runtime}]
const target = new URL(url);

// weights of the mix (deploy and delete pair up: a client deletes what it deployed)
const MIX = [
    ['execute', 30],
    ['invoke_url', 30],
    ['invoke_function', 20],
    ['deploy', 8],
    ['delete', 8],
    ['cron_trigger', cronjobId ? 4 : 0],
];
const TOTAL_WEIGHT = MIX.reduce((a, [, w]) => a + w, 0);

const stats = new Map(); // op -> {latencies: [], statuses: {}}
function record(op, status, ms) {
    let s = stats.get(op);
    if (!s) stats.set(op, (s = {latencies: [], statuses: {}}));
    s.statuses[status] = (s.statuses[status] || 0) + 1;
    if (typeof status === 'number') s.latencies.push(ms);
}
const samples = []; // a few unexpected answers, to say what went wrong
function sample(op, status, body) {
    if (samples.length < 20) samples.push({op, status, body: String(body).slice(0, 300)});
}

function request(agent, method, path, body, localAddress) {
    return new Promise((resolve) => {
        const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
        const headers = {Authorization: 'Bearer ' + token};
        if (data) {
            headers['Content-Type'] = 'application/json';
            headers['Content-Length'] = data.length;
        }
        const start = process.hrtime.bigint();
        const req = http.request({host: target.hostname, port: target.port, method, path, headers,
                                  agent, localAddress, timeout: TIMEOUT_MS}, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({status: res.statusCode, body: Buffer.concat(chunks),
                                         ms: Number(process.hrtime.bigint() - start) / 1e6}));
            res.on('error', (e) => resolve({status: 'conn:' + (e.code || e.message), body: '',
                                            ms: 0}));
        });
        req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'),
                                                          {code: 'TIMEOUT'})));
        req.on('error', (e) => resolve({status: 'conn:' + (e.code || e.message), body: '', ms: 0}));
        if (data) req.write(data);
        req.end();
    });
}

const NODE_FN = 'module.exports = { handle: async (ctx, body) => ({ body: "ok " + ' +
                'JSON.stringify(body) }) };';
const PY_FN = 'def new():\n    return F()\n\nclass F:\n' +
              '    async def handle(self, scope, receive, send):\n' +
              '        await send({"type": "http.response.start", "status": 200,\n' +
              '                    "headers": [[b"content-type", b"text/plain"]]})\n' +
              '        await send({"type": "http.response.body", "body": b"ok"})\n';

async function client(index, deadline) {
    const agent = new http.Agent({keepAlive: true, maxSockets: 1});
    const localAddress = '127.0.0.' + (2 + (index % SOURCES));
    const mine = []; // functions this client deployed and has not deleted yet
    let n = 0;
    const call = async (op, method, path, body, ok) => {
        const r = await request(agent, method, path, body, localAddress);
        record(op, r.status, r.ms);
        if (typeof r.status === 'number' && !ok(r.status) && r.status !== 429)
            sample(op, r.status, r.body);
        return r;
    };
    const is2xx = (s) => s >= 200 && s < 300;
    while (Date.now() < deadline) {
        let pick = Math.random() * TOTAL_WEIGHT;
        let op = MIX[0][0];
        for (const [name, w] of MIX) {
            if (pick < w) { op = name; break; }
            pick -= w;
        }
        if (op === 'delete' && mine.length === 0) op = 'deploy';
        if (op === 'deploy' && mine.length >= 4) op = 'delete';
        const resident = residents[n++ % residents.length];
        if (op === 'execute') {
            const python = Math.random() < 0.7;
            await call(op, 'POST', '/internal/v1/operations/execute',
                       python ? {runtime: 'python', code: 'print(6 * 7)'}
                              : {runtime: 'node', code: 'console.log(6 * 7)'}, is2xx);
        } else if (op === 'invoke_url') {
            await call(op, 'POST', '/fn/' + resident.id + '/', {client: index}, is2xx);
        } else if (op === 'invoke_function') {
            await call(op, 'POST', '/internal/v1/operations/invoke-function',
                       {id: resident.id, body: JSON.stringify({client: index})}, is2xx);
        } else if (op === 'deploy') {
            const python = Math.random() < 0.5;
            const r = await call(op, 'POST', '/internal/v1/operations/deploy-function',
                                 {runtime: python ? 'python' : 'node', name: 'load-' + index,
                                  code: python ? PY_FN : NODE_FN, ttl_seconds: 600}, is2xx);
            if (r.status === 201) mine.push(JSON.parse(r.body).id);
        } else if (op === 'delete') {
            const id = mine.shift();
            const r = await call(op, 'POST', '/internal/v1/operations/delete-function', {id},
                                 is2xx);
            if (r.status === 429 || typeof r.status !== 'number') mine.push(id);
        } else if (op === 'cron_trigger') {
            await call(op, 'POST', '/internal/v1/cronjobs/' + cronjobId + '/trigger', {}, is2xx);
        }
    }
    // what this client deployed goes away with it (counted as deletes, after the deadline)
    for (let tries = 0; mine.length && tries < 50; tries++) {
        const id = mine.shift();
        const r = await call('delete', 'POST', '/internal/v1/operations/delete-function', {id},
                             (s) => is2xx(s) || s === 404);
        if (r.status === 429 || typeof r.status !== 'number') mine.push(id);
    }
    agent.destroy();
    return mine; // left behind: the script reports them as a leak
}

function percentile(sorted, p) {
    if (!sorted.length) return null;
    const k = (sorted.length - 1) * p;
    const lo = Math.floor(k), hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (k - lo);
}

const started = Date.now();
const deadline = started + SECONDS * 1000;
const leftovers = (await Promise.all(Array.from({length: CLIENTS},
                                                (_, i) => client(i, deadline)))).flat();
const elapsed = (Date.now() - started) / 1000;
const operations = {};
for (const [op, s] of stats) {
    const l = s.latencies.sort((a, b) => a - b);
    const count = Object.values(s.statuses).reduce((a, b) => a + b, 0);
    operations[op] = {count, per_second: count / SECONDS, statuses: s.statuses,
                      p50_ms: percentile(l, 0.5), p99_ms: percentile(l, 0.99),
                      max_ms: l.length ? l[l.length - 1] : null};
}
process.stdout.write(JSON.stringify({clients: CLIENTS, seconds: SECONDS, elapsed_s: elapsed,
                                     sources: SOURCES, operations, samples,
                                     undeleted: leftovers}, null, 1) + '\n');
