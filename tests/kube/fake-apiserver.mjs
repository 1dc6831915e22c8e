// A fake Kubernetes API server for HKS Functions' tests, on loopback.
//
// It stores objects per kind and namespace and serves create (POST), get, list (labelSelector,
// fieldSelector), replace (PUT, resourceVersion checked), merge patch, delete (DeleteOptions with
// propagationPolicy, recorded) and watch (resourceVersion; "410 Gone" for a compacted one) for the
// kinds hksd uses, with real `Status` errors (404 NotFound, 409 AlreadyExists/Conflict, 422
// Invalid, 401 Unauthorized). Every object it receives is validated with kubernetes-models and
// @kubernetes-models/knative; an invalid one gets 422 and is recorded, so tests can assert that
// nothing invalid was sent. It plays the controllers: a Knative Service becomes Ready with
// status.address.url, a Pod terminates with a termination message (or fails its deadline) when
// told to, a Job gets the status and the Pod (with a log, served by pods/log) of a finished run
// when told to, and a CronJob's controller creates a scheduled Job when told to.
//
// Usage: node fake-apiserver.mjs [--port N] [--tls CERT KEY] [--token T]
// It prints one JSON line {"port": N, "url": "..."} on stdout once listening.
// Test controls live under /_fake/ (see handleFake below); they need no token.
import http from "node:http";
import https from "node:https";
import fs from "node:fs";
import crypto from "node:crypto";

import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Pod } from "kubernetes-models/v1/Pod";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { Job } from "kubernetes-models/batch/v1/Job";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { Service as KnativeService } from "@kubernetes-models/knative/serving.knative.dev/v1/Service";

// plural -> what it is; the key of a resource is "<prefix>/<plural>"
const RESOURCES = {
  "/api/v1/namespaces": { kind: "Namespace", apiVersion: "v1", model: Namespace, namespaced: false },
  "/api/v1/serviceaccounts": { kind: "ServiceAccount", apiVersion: "v1", model: ServiceAccount, namespaced: true },
  "/api/v1/configmaps": { kind: "ConfigMap", apiVersion: "v1", model: ConfigMap, namespaced: true },
  "/api/v1/secrets": { kind: "Secret", apiVersion: "v1", model: Secret, namespaced: true },
  "/api/v1/pods": { kind: "Pod", apiVersion: "v1", model: Pod, namespaced: true },
  "/apis/networking.k8s.io/v1/networkpolicies": { kind: "NetworkPolicy", apiVersion: "networking.k8s.io/v1", model: NetworkPolicy, namespaced: true },
  "/apis/batch/v1/jobs": { kind: "Job", apiVersion: "batch/v1", model: Job, namespaced: true },
  "/apis/batch/v1/cronjobs": { kind: "CronJob", apiVersion: "batch/v1", model: CronJob, namespaced: true },
  "/apis/serving.knative.dev/v1/services": { kind: "Service", apiVersion: "serving.knative.dev/v1", model: KnativeService, namespaced: true },
};

const args = process.argv.slice(2);
const opt = { port: 0, tls: null, token: null };
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--port") opt.port = Number(args[++i]);
  else if (args[i] === "--tls") opt.tls = { cert: args[++i], key: args[++i] };
  else if (args[i] === "--token") opt.token = args[++i];
  else { console.error(`unknown argument ${args[i]}`); process.exit(2); }
}

const state = {
  rv: 100,
  minRv: 0, // watches from below this get 410 Gone
  objects: new Map(), // "<resource>|<ns>|<name>" -> object
  history: [], // {rv, type, resource, object}
  watchers: new Set(),
  invalid: [], // objects refused as invalid
  requests: [], // {method, path, query, body}
  faults: [], // {method, pathPrefix, status, times, delayMs}
  tokens: opt.token ? [opt.token] : null,
  knative: { ready: true, delayMs: 50, urlTemplate: "http://{name}.{namespace}.svc.cluster.local", fail: null },
  podMessage: null, // when set, a new Pod terminates at once with this message
  podExitCode: 0, // ... and this exit code
  podDeadline: false, // when set, a new Pod fails at once as past its activeDeadlineSeconds
  podLogs: new Map(), // "<ns>|<name>" -> the log text pods/log serves
  goneAsStatus: false, // answer a too-old watch with HTTP 410 instead of an ERROR event
};

function status(code, reason, message, details) {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code, ...(details ? { details } : {}) };
}

function send(res, code, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendStatus(res, code, reason, message, details) {
  send(res, code, status(code, reason, message, details));
}

// "/api/v1/namespaces/ns/pods/name" -> {resource, ns, name}; null when not an API path we serve
function parsePath(path) {
  const parts = path.split("/").filter(Boolean);
  const prefixLen = parts[0] === "api" ? 2 : parts[0] === "apis" ? 3 : 0;
  if (!prefixLen || parts.length < prefixLen + 1) return null;
  const prefix = "/" + parts.slice(0, prefixLen).join("/");
  let rest = parts.slice(prefixLen);
  let ns;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    ns = rest[1];
    rest = rest.slice(2);
  }
  let sub;
  if (rest.length === 3 && rest[0] === "pods" && rest[2] === "log") sub = "log";
  else if (rest.length > 2) return null;
  const resource = `${prefix}/${rest[0]}`;
  if (!RESOURCES[resource]) return null;
  return { resource, ns, name: rest[1], sub };
}

const key = (resource, ns, name) => `${resource}|${ns ?? ""}|${name}`;

// ---- selectors ----
function parseLabelSelector(text) {
  if (!text) return () => true;
  const reqs = [];
  // split on commas outside parentheses
  const parts = text.match(/([^,(]+(\([^)]*\))?)+/g) ?? [];
  for (const raw of parts) {
    const p = raw.trim();
    let m;
    if ((m = p.match(/^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/))) {
      const values = m[3].split(",").map((v) => v.trim());
      const neg = m[2] === "notin";
      reqs.push((l) => (neg ? !values.includes(l[m[1]]) : values.includes(l[m[1]])));
    } else if ((m = p.match(/^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/))) {
      const [, k, op, v] = m;
      reqs.push((l) => (op === "!=" ? l[k] !== v : l[k] === v));
    } else if ((m = p.match(/^!([\w./-]+)$/))) {
      reqs.push((l) => !(m[1] in l));
    } else if ((m = p.match(/^([\w./-]+)$/))) {
      reqs.push((l) => m[1] in l);
    } else {
      throw new Error(`unable to parse requirement: ${p}`);
    }
  }
  return (obj) => reqs.every((r) => r(obj.metadata?.labels ?? {}));
}

function parseFieldSelector(text) {
  if (!text) return () => true;
  const reqs = text.split(",").map((p) => {
    const m = p.match(/^(metadata\.name|metadata\.namespace|status\.phase)(==|=|!=)(.*)$/);
    if (!m) throw new Error(`field label not supported: ${p}`);
    const get = (o) => m[1].split(".").reduce((a, k) => a?.[k], o);
    return (o) => (m[2] === "!=" ? get(o) !== m[3] : get(o) === m[3]);
  });
  return (obj) => reqs.every((r) => r(obj));
}

// ---- validation ----
function validate(info, obj) {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return "the body is not a JSON object";
  if (obj.kind !== info.kind || obj.apiVersion !== info.apiVersion)
    return `kind ${obj.kind} apiVersion ${obj.apiVersion} sent to the ${info.apiVersion} ${info.kind} collection`;
  try {
    new info.model(obj).validate();
  } catch (e) {
    return e.message;
  }
  const name = obj.metadata?.name;
  if (typeof name !== "string" || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253)
    return "metadata.name: a lowercase RFC 1123 subdomain is required";
  return null;
}

function refuseInvalid(res, req, info, obj, message) {
  state.invalid.push({ method: req.method, path: req.url, kind: info.kind, object: obj, message });
  sendStatus(res, 422, "Invalid", `${info.kind} "${obj?.metadata?.name ?? ""}" is invalid: ${message}`, {
    name: obj?.metadata?.name, kind: info.kind, causes: [{ reason: "FieldValueInvalid", message }],
  });
}

// ---- storage and events ----
function emit(type, resource, object) {
  const ev = { rv: Number(object.metadata.resourceVersion), type, resource, object: structuredClone(object) };
  state.history.push(ev);
  if (state.history.length > 10000) state.history.splice(0, 1000);
  for (const w of state.watchers) w.offer(ev);
}

function store(resource, object, type) {
  object.metadata.resourceVersion = String(++state.rv);
  state.objects.set(key(resource, object.metadata.namespace, object.metadata.name), object);
  emit(type, resource, object);
  return object;
}

function controllers(resource, object) {
  if (resource === "/apis/serving.knative.dev/v1/services") {
    const { name, namespace } = object.metadata;
    const generation = object.metadata.generation;
    setTimeout(() => {
      const cur = state.objects.get(key(resource, namespace, name));
      if (!cur || cur.metadata.generation !== generation) return;
      const kn = state.knative;
      const url = kn.urlTemplate.replaceAll("{name}", name).replaceAll("{namespace}", namespace);
      const cond = (type) => kn.fail
        ? { type, status: "False", reason: kn.fail, message: `fake: ${kn.fail}` }
        : { type, status: kn.ready ? "True" : "Unknown", ...(kn.ready ? {} : { reason: "Deploying" }) };
      cur.status = {
        observedGeneration: generation,
        conditions: [cond("ConfigurationsReady"), cond("Ready"), cond("RoutesReady")],
        ...(kn.ready && !kn.fail ? { url, address: { url }, latestReadyRevisionName: `${name}-00001` } : {}),
        latestCreatedRevisionName: `${name}-00001`,
      };
      store(resource, cur, "MODIFIED");
    }, state.knative.delayMs);
  }
  if (resource === "/api/v1/pods") {
    object.status = { phase: "Pending" };
    const { namespace, name } = object.metadata;
    if (state.podDeadline) setTimeout(() => deadlinePod(namespace, name), 20);
    else if (state.podMessage !== null) setTimeout(() => terminatePod(namespace, name, state.podExitCode, state.podMessage), 20);
  }
  if (resource === "/apis/batch/v1/jobs") object.status = { active: 1, startTime: now() };
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

// What the kubelet does to a Pod past its activeDeadlineSeconds.
function deadlinePod(namespace, name) {
  const cur = state.objects.get(key("/api/v1/pods", namespace, name));
  if (!cur) return false;
  cur.status = { phase: "Failed", reason: "DeadlineExceeded",
    message: `Pod was active on the node longer than the specified deadline` };
  store("/api/v1/pods", cur, "MODIFIED");
  return true;
}

// A Job's run ended as the Job controller reports it, with the Pod that ran (labelled as the Job
// controller labels them) and its log.
function finishJob(namespace, name, { succeeded = true, exit_code, log = "", reason, message } = {}) {
  const jobKey = key("/apis/batch/v1/jobs", namespace, name);
  const job = state.objects.get(jobKey);
  if (!job) return false;
  const code = exit_code ?? (succeeded ? 0 : 1);
  const start = job.status?.startTime ?? now();
  const podSpec = structuredClone(job.spec.template.spec);
  const podName = `${name}-${crypto.randomBytes(3).toString("hex").slice(0, 5)}`;
  const pod = {
    apiVersion: "v1", kind: "Pod",
    metadata: { name: podName, namespace, uid: crypto.randomUUID(), creationTimestamp: start, generation: 1,
      labels: { ...(job.spec.template.metadata?.labels ?? {}), "job-name": name, "batch.kubernetes.io/job-name": name,
        "controller-uid": job.metadata.uid, "batch.kubernetes.io/controller-uid": job.metadata.uid },
      ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name, uid: job.metadata.uid, controller: true, blockOwnerDeletion: true }] },
    spec: podSpec,
  };
  const problem = validate(RESOURCES["/api/v1/pods"], pod);
  if (problem) throw new Error(`the Job's pod template makes an invalid Pod: ${problem}`);
  const cname = podSpec.containers[0].name;
  pod.status = { phase: code === 0 ? "Succeeded" : "Failed", startTime: start,
    containerStatuses: [{ name: cname, ready: false, restartCount: 0, image: podSpec.containers[0].image, imageID: "",
      state: { terminated: { exitCode: code, reason: code === 0 ? "Completed" : "Error", startedAt: start, finishedAt: now(), ...(message ? { message } : {}) } } }] };
  store("/api/v1/pods", pod, "ADDED");
  state.podLogs.set(`${namespace}|${podName}`, log);
  const end = now();
  job.status = succeeded
    ? { startTime: start, completionTime: end, succeeded: 1, ready: 0, terminating: 0,
        conditions: [{ type: "SuccessCriteriaMet", status: "True", lastProbeTime: end, lastTransitionTime: end },
          { type: "Complete", status: "True", lastProbeTime: end, lastTransitionTime: end }] }
    : { startTime: start, failed: 1, ready: 0, terminating: 0,
        conditions: [{ type: "FailureTarget", status: "True", lastProbeTime: end, lastTransitionTime: end, reason: reason ?? "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" },
          { type: "Failed", status: "True", lastProbeTime: end, lastTransitionTime: end, reason: reason ?? "BackoffLimitExceeded",
            message: reason === "DeadlineExceeded" ? "Job was active longer than specified deadline" : "Job has reached the specified backoff limit" }] };
  store("/apis/batch/v1/jobs", job, "MODIFIED");
  return true;
}

// The CronJob controller's part at a schedule time: a Job from the jobTemplate, named after the
// scheduled minute, owned by the CronJob, with the scheduled-timestamp annotation.
function scheduleCronJob(namespace, name, scheduledTime) {
  const cj = state.objects.get(key("/apis/batch/v1/cronjobs", namespace, name));
  if (!cj) return null;
  const t = scheduledTime ? new Date(scheduledTime) : new Date();
  const minutes = Math.floor(t.getTime() / 60000);
  const tmpl = cj.spec.jobTemplate;
  const job = {
    apiVersion: "batch/v1", kind: "Job",
    metadata: { name: `${name}-${minutes}`, namespace, labels: { ...(tmpl.metadata?.labels ?? {}) },
      annotations: { ...(tmpl.metadata?.annotations ?? {}), "batch.kubernetes.io/cronjob-scheduled-timestamp": t.toISOString().replace(/\.\d+Z$/, "Z") },
      ownerReferences: [{ apiVersion: "batch/v1", kind: "CronJob", name, uid: cj.metadata.uid, controller: true, blockOwnerDeletion: true }] },
    spec: structuredClone(tmpl.spec),
  };
  const problem = validate(RESOURCES["/apis/batch/v1/jobs"], job);
  if (problem) throw new Error(`the CronJob's jobTemplate makes an invalid Job: ${problem}`);
  if (state.objects.has(key("/apis/batch/v1/jobs", namespace, job.metadata.name))) return null;
  Object.assign(job.metadata, { uid: crypto.randomUUID(), creationTimestamp: now(), generation: 1 });
  controllers("/apis/batch/v1/jobs", job);
  store("/apis/batch/v1/jobs", job, "ADDED");
  cj.status = { ...(cj.status ?? {}), lastScheduleTime: job.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"],
    active: [{ apiVersion: "batch/v1", kind: "Job", name: job.metadata.name, namespace, uid: job.metadata.uid }] };
  store("/apis/batch/v1/cronjobs", cj, "MODIFIED");
  return job;
}

function terminatePod(namespace, name, exitCode, message) {
  const cur = state.objects.get(key("/api/v1/pods", namespace, name));
  if (!cur) return false;
  const cname = cur.spec?.containers?.[0]?.name ?? "main";
  cur.status = {
    phase: exitCode === 0 ? "Succeeded" : "Failed",
    containerStatuses: [{ name: cname, ready: false, restartCount: 0, image: cur.spec?.containers?.[0]?.image ?? "",
      imageID: "", state: { terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", message } } }],
  };
  store("/api/v1/pods", cur, "MODIFIED");
  return true;
}

// ---- handlers ----
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => { size += c.length; if (size > 16 << 20) { reject(new Error("too large")); req.destroy(); } else chunks.push(c); });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function itemsOf(resource, ns, labelSel, fieldSel) {
  const out = [];
  for (const [k, obj] of state.objects) {
    if (!k.startsWith(`${resource}|`)) continue;
    if (ns !== undefined && obj.metadata.namespace !== ns) continue;
    if (labelSel(obj) && fieldSel(obj)) out.push(obj);
  }
  return out.sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
}

function watch(req, res, info, resource, ns, labelSel, fieldSel, query) {
  const from = query.get("resourceVersion");
  const timeout = Math.min(Number(query.get("timeoutSeconds") ?? 1800), 1800);
  const fromRv = from ? Number(from) : state.rv;
  if (from && (Number.isNaN(fromRv) || fromRv < state.minRv)) {
    const gone = status(410, "Expired", `too old resource version: ${from} (${state.minRv})`);
    if (state.goneAsStatus) return send(res, 410, gone);
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    res.end(JSON.stringify({ type: "ERROR", object: gone }) + "\n");
    return;
  }
  res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
  const matches = (ev) => ev.resource === resource && (ns === undefined || ev.object.metadata.namespace === ns) &&
    labelSel(ev.object) && fieldSel(ev.object);
  const w = {
    end: () => end(),
    offer(ev) {
      if (ev.rv > fromRv && matches(ev)) res.write(JSON.stringify({ type: ev.type, object: ev.object }) + "\n");
    },
  };
  for (const ev of state.history) w.offer(ev);
  state.watchers.add(w);
  const end = () => { state.watchers.delete(w); clearTimeout(timer); res.end(); };
  const timer = setTimeout(end, timeout * 1000);
  req.on("close", () => { state.watchers.delete(w); clearTimeout(timer); });
  void info;
}

// The garbage collector's part: what the deleted object owned goes too (dependents of dependents
// as well), as with propagationPolicy Background.
function collectGarbage(uid) {
  for (const [k, obj] of [...state.objects]) {
    if (!(obj.metadata.ownerReferences ?? []).some((r) => r.uid === uid)) continue;
    state.objects.delete(k);
    obj.metadata.resourceVersion = String(++state.rv);
    emit("DELETED", k.split("|")[0], obj);
    collectGarbage(obj.metadata.uid);
  }
}

// GET pods/NAME/log: text/plain, limitBytes keeps the first bytes, tailLines the last lines.
function podLog(req, res, url, ns, name) {
  state.requests.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body: null });
  if (req.method !== "GET") return sendStatus(res, 405, "MethodNotAllowed", `${req.method} is not allowed here`);
  if (!state.objects.has(key("/api/v1/pods", ns, name))) return sendStatus(res, 404, "NotFound", `pods "${name}" not found`, { name, kind: "Pod" });
  let text = state.podLogs.get(`${ns}|${name}`) ?? "";
  const tail = url.searchParams.get("tailLines");
  if (tail !== null) {
    const lines = text.split(/(?<=\n)/);
    text = lines.slice(Math.max(0, lines.length - Number(tail))).join("");
  }
  let buf = Buffer.from(text, "utf8");
  const limit = url.searchParams.get("limitBytes");
  if (limit !== null) buf = buf.subarray(0, Number(limit));
  res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": buf.length });
  res.end(buf);
}

function mergePatch(target, patch) {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const out = typeof target === "object" && target !== null && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

async function handleApi(req, res, url) {
  const route = parsePath(url.pathname);
  if (!route) return sendStatus(res, 404, "NotFound", `the server could not find the requested resource (${url.pathname})`);
  const { resource, name } = route;
  const info = RESOURCES[resource];
  const ns = info.namespaced ? route.ns : undefined;
  if (route.sub === "log") return podLog(req, res, url, ns, name);
  const what = `${info.kind.toLowerCase()}s${name ? ` "${name}"` : ""}`;
  let body = null;
  const raw = await readBody(req);
  if (raw) {
    try { body = JSON.parse(raw); } catch { return sendStatus(res, 400, "BadRequest", "the body is not JSON"); }
  }
  state.requests.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body });

  let labelSel, fieldSel;
  try {
    labelSel = parseLabelSelector(url.searchParams.get("labelSelector"));
    fieldSel = parseFieldSelector(url.searchParams.get("fieldSelector"));
  } catch (e) {
    return sendStatus(res, 400, "BadRequest", e.message);
  }

  if (!name) {
    if (req.method === "GET") {
      if (url.searchParams.get("watch") === "1" || url.searchParams.get("watch") === "true")
        return watch(req, res, info, resource, ns, labelSel, fieldSel, url.searchParams);
      const items = itemsOf(resource, ns, labelSel, fieldSel);
      return send(res, 200, { kind: `${info.kind}List`, apiVersion: info.apiVersion, metadata: { resourceVersion: String(state.rv) }, items });
    }
    if (req.method === "POST") {
      if (info.namespaced && !ns) return sendStatus(res, 405, "MethodNotAllowed", "create needs a namespace");
      const problem = validate(info, body);
      if (problem) return refuseInvalid(res, req, info, body, problem);
      if (info.namespaced && body.metadata.namespace && body.metadata.namespace !== ns)
        return refuseInvalid(res, req, info, body, "the namespace of the provided object does not match the namespace sent on the request");
      const k = key(resource, ns, body.metadata.name);
      if (state.objects.has(k))
        return sendStatus(res, 409, "AlreadyExists", `${info.kind.toLowerCase()}s "${body.metadata.name}" already exists`, { name: body.metadata.name, kind: info.kind });
      if (body.metadata.resourceVersion) return refuseInvalid(res, req, info, body, "metadata.resourceVersion: must not be set on create");
      const obj = structuredClone(body);
      delete obj.status;
      Object.assign(obj.metadata, { uid: crypto.randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"), generation: 1 });
      if (info.namespaced) obj.metadata.namespace = ns;
      controllers(resource, obj);
      store(resource, obj, "ADDED");
      return send(res, 201, obj);
    }
    return sendStatus(res, 405, "MethodNotAllowed", `${req.method} is not allowed on a collection here`);
  }

  const k = key(resource, ns, name);
  const cur = state.objects.get(k);
  if (!cur) return sendStatus(res, 404, "NotFound", `${what} not found`, { name, kind: info.kind });
  if (req.method === "GET") return send(res, 200, cur);
  if (req.method === "DELETE") {
    if (body && body.kind !== "DeleteOptions") return sendStatus(res, 400, "BadRequest", "the body is not DeleteOptions");
    const policy = body?.propagationPolicy ?? url.searchParams.get("propagationPolicy");
    if (policy && !["Background", "Foreground", "Orphan"].includes(policy))
      return refuseInvalid(res, req, { kind: "DeleteOptions" }, body, `propagationPolicy: unsupported value "${policy}"`);
    state.objects.delete(k);
    cur.metadata.resourceVersion = String(++state.rv);
    emit("DELETED", resource, cur);
    if (policy !== "Orphan") collectGarbage(cur.metadata.uid);
    return send(res, 200, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name, kind: info.kind, uid: cur.metadata.uid } });
  }
  if (req.method === "PUT" || req.method === "PATCH") {
    let next;
    if (req.method === "PUT") {
      next = body;
      const problem = validate(info, next);
      if (problem) return refuseInvalid(res, req, info, next, problem);
      if (next.metadata.name !== name) return refuseInvalid(res, req, info, next, "metadata.name: the name in the body does not match the URL");
      if (!next.metadata.resourceVersion)
        return refuseInvalid(res, req, info, next, "metadata.resourceVersion: must be specified for an update");
      if (next.metadata.resourceVersion !== cur.metadata.resourceVersion)
        return sendStatus(res, 409, "Conflict", `Operation cannot be fulfilled on ${what}: the object has been modified; please apply your changes to the latest version and try again`, { name, kind: info.kind });
    } else {
      if ((req.headers["content-type"] ?? "") !== "application/merge-patch+json")
        return sendStatus(res, 415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json`);
      next = mergePatch(structuredClone(cur), body);
      const problem = validate(info, next);
      if (problem) return refuseInvalid(res, req, info, next, problem);
    }
    const obj = structuredClone(next);
    obj.metadata = { ...obj.metadata, uid: cur.metadata.uid, creationTimestamp: cur.metadata.creationTimestamp, namespace: cur.metadata.namespace,
      generation: JSON.stringify(obj.spec) !== JSON.stringify(cur.spec) ? cur.metadata.generation + 1 : cur.metadata.generation };
    if (obj.metadata.namespace === undefined) delete obj.metadata.namespace;
    obj.status = cur.status;
    if (obj.metadata.generation !== cur.metadata.generation) controllers(resource, obj);
    store(resource, obj, "MODIFIED");
    return send(res, 200, obj);
  }
  return sendStatus(res, 405, "MethodNotAllowed", `${req.method} is not allowed here`);
}

// Test controls: GET /_fake/invalid, /_fake/requests, /_fake/objects; POST /_fake/fault
// {method, path (a prefix), status (0: never answer), times, delay_ms, body (sent as is)}, /_fake/token {token} (the accepted token: older ones
// get 401), /_fake/compact (every resourceVersion so far is too old to watch from),
// /_fake/knative {ready, delay_ms, url, fail}, /_fake/ready {namespace, name, url} (one Service
// made Ready, for a test that started the function's instance itself), /_fake/pod {namespace,
// name, exit_code, message} or {message, exit_code} (every new Pod terminates with it; message
// null: none does) or {deadline: true} (every new Pod fails as past its deadline), /_fake/job
// {namespace, name, succeeded, exit_code, log, reason, message} (the Job's run ended),
// /_fake/cronjob-run {namespace, name, scheduled_time} (the CronJob controller starts a
// scheduled Job), /_fake/config {gone_as_status}, /_fake/reset.
async function handleFake(req, res, url) {
  const what = url.pathname.slice("/_fake/".length);
  const raw = await readBody(req);
  const body = raw ? JSON.parse(raw) : {};
  switch (`${req.method} ${what}`) {
    case "GET invalid": return send(res, 200, state.invalid);
    case "GET requests": return send(res, 200, state.requests);
    case "GET objects": return send(res, 200, [...state.objects.values()]);
    case "POST fault":
      state.faults.push({ method: body.method ?? null, path: body.path ?? "", status: body.status ?? 500, times: body.times ?? 1,
        delayMs: body.delay_ms ?? 0, body: body.body ?? null });
      return send(res, 200, {});
    case "POST token": state.tokens = [body.token]; return send(res, 200, {});
    case "POST compact":
      // as after an etcd compaction and an API server restart: open watches end, and watching
      // again from any resourceVersion seen so far gets 410 Gone
      state.minRv = state.rv + 1;
      for (const w of [...state.watchers]) w.end();
      return send(res, 200, { minRv: state.minRv });
    case "POST knative":
      if ("ready" in body) state.knative.ready = body.ready;
      if ("delay_ms" in body) state.knative.delayMs = body.delay_ms;
      if ("url" in body) state.knative.urlTemplate = body.url;
      if ("fail" in body) state.knative.fail = body.fail;
      return send(res, 200, state.knative);
    case "POST pod":
      if (body.name) return send(res, terminatePod(body.namespace, body.name, body.exit_code ?? 0, body.message ?? "") ? 200 : 404, {});
      state.podMessage = body.message ?? null;
      state.podExitCode = body.exit_code ?? 0;
      state.podDeadline = !!body.deadline;
      return send(res, 200, {});
    case "POST job":
      return send(res, finishJob(body.namespace, body.name, body) ? 200 : 404, {});
    case "POST cronjob-run": {
      const job = scheduleCronJob(body.namespace, body.name, body.scheduled_time);
      return send(res, job ? 200 : 404, job ?? {});
    }
    case "POST ready": {
      // one Knative Service made Ready (the test started its instance): {namespace, name, url}
      const cur = state.objects.get(key("/apis/serving.knative.dev/v1/services", body.namespace, body.name));
      if (!cur) return send(res, 404, { error: `no Knative Service ${body.namespace}/${body.name}` });
      const cond = (type) => ({ type, status: "True" });
      cur.status = {
        observedGeneration: cur.metadata.generation,
        conditions: [cond("ConfigurationsReady"), cond("Ready"), cond("RoutesReady")],
        url: body.url, address: { url: body.url },
        latestCreatedRevisionName: `${body.name}-00001`, latestReadyRevisionName: `${body.name}-00001`,
      };
      store("/apis/serving.knative.dev/v1/services", cur, "MODIFIED");
      return send(res, 200, cur);
    }
    case "POST config": if ("gone_as_status" in body) state.goneAsStatus = !!body.gone_as_status; return send(res, 200, {});
    case "POST reset":
      state.invalid = []; state.requests = []; state.faults = [];
      return send(res, 200, {});
    default: return send(res, 404, { error: `no fake control ${req.method} ${what}` });
  }
}

async function handle(req, res) {
  const url = new URL(req.url, "http://fake");
  if (url.pathname.startsWith("/_fake/")) return handleFake(req, res, url);
  if (state.tokens) {
    const auth = req.headers.authorization ?? "";
    if (!state.tokens.some((t) => auth === `Bearer ${t}`)) {
      state.requests.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body: null, unauthorized: true });
      return sendStatus(res, 401, "Unauthorized", "Unauthorized");
    }
  }
  const fault = state.faults.find((f) => f.times > 0 && (!f.method || f.method === req.method) && url.pathname.startsWith(f.path));
  if (fault) {
    fault.times--;
    state.requests.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body: null, fault: fault.status });
    if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault.status === 0) return; // leave the request hanging (a dead server)
    if (fault.body !== null) { // a reply that is not what the API promises
      res.writeHead(fault.status, { "Content-Type": "application/json" });
      return res.end(fault.body);
    }
    const reasons = { 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout" };
    return send(res, fault.status, status(fault.status, reasons[fault.status] ?? "InternalError", `fake fault ${fault.status}`),
      fault.status === 429 ? { "Retry-After": "1" } : {});
  }
  return handleApi(req, res, url);
}

const server = opt.tls
  ? https.createServer({ cert: fs.readFileSync(opt.tls.cert), key: fs.readFileSync(opt.tls.key) }, (q, s) => handle(q, s).catch((e) => sendStatus(s, 500, "InternalError", String(e))))
  : http.createServer((q, s) => handle(q, s).catch((e) => sendStatus(s, 500, "InternalError", String(e))));
server.keepAliveTimeout = 30000;
server.listen(opt.port, "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(JSON.stringify({ port, url: `${opt.tls ? "https" : "http"}://127.0.0.1:${port}` }) + "\n");
});
process.on("SIGTERM", () => process.exit(0));
