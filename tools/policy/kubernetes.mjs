// The Kubernetes side of `hksd policy` (daemon/policy_kube.c runs it):
//
//   node kubernetes.mjs check FILE...        one line per problem: "FILE: FIELD: message"
//   node kubernetes.mjs diff OLD_DIR NEW_DIR one line per change: "loosened|tightened|changed:
//                                            kubernetes/FILE: FIELD: what"
//
// check validates every object against the Kubernetes schemas of the npm package
// kubernetes-models (and @kubernetes-models/knative for Knative objects), then against the
// restricted rules hksd holds functions to: Pod Security "restricted" (no privileged containers,
// no added capability, capabilities.drop ALL, allowPrivilegeEscalation false, runAsNonRoot, a
// RuntimeDefault or Localhost seccomp profile, no host namespaces, ports or paths), namespaces that
// enforce a Pod Security level, ServiceAccounts that mount no token, NetworkPolicies that govern
// both directions. A file without apiVersion and kind that holds a securityContext (hksd's
// container fragment) is checked as a container's securityContext.
//
// Exit status: 0 nothing to report, 1 problems (check), 2 usage or a file that cannot be read.

import { readFileSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { parseAllDocuments } from "yaml";

const RESTRICTED_SECCOMP = new Set(["RuntimeDefault", "Localhost"]);
const POD_SECURITY_LEVELS = { privileged: 0, baseline: 1, restricted: 2 };

// ---- reading ----

// Every document of a YAML or JSON file: [{value, field}] where field prefixes problem fields
// ("" for a file of one document, "documents[i]." otherwise); parse errors go to problems.
function readDocuments(file, problems) {
    let text;
    try {
        text = readFileSync(file, "utf8");
    } catch (e) {
        problems.push(`${file}: (file): cannot read: ${e.message}`);
        return [];
    }
    if (file.endsWith(".json")) {
        try {
            return [{ value: JSON.parse(text), field: "" }];
        } catch (e) {
            problems.push(`${file}: (file): invalid JSON: ${e.message}`);
            return [];
        }
    }
    const docs = parseAllDocuments(text, { uniqueKeys: true }).filter(
        (d) => d.contents !== null || d.errors.length > 0);
    const out = [];
    docs.forEach((doc, i) => {
        const field = docs.length > 1 ? `documents[${i}].` : "";
        if (doc.errors.length > 0) {
            for (const e of doc.errors) {
                const where = e.linePos ? `line ${e.linePos[0].line}` : "(file)";
                problems.push(`${file}: ${field}${where}: invalid YAML: ${e.message.split("\n")[0]}`);
            }
            return;
        }
        out.push({ value: doc.toJS(), field });
    });
    return out;
}

function isObject(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
}

// "/spec/containers/0/securityContext" -> "spec.containers[0].securityContext"
function fieldOf(pointer) {
    let out = "";
    for (const part of pointer.split("/").slice(1)) {
        const key = part.replace(/~1/g, "/").replace(/~0/g, "~");
        out += /^\d+$/.test(key) ? `[${key}]` : (out ? "." : "") + key;
    }
    return out;
}

// ---- schemas ----

async function modelFor(apiVersion, kind) {
    if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Za-z0-9]+$/.test(kind))
        return null;
    for (const spec of [`kubernetes-models/${apiVersion}/${kind}`,
                        `@kubernetes-models/knative/${apiVersion}/${kind}`]) {
        try {
            const module = await import(spec);
            if (module[kind])
                return module[kind];
        } catch (e) {
            if (e.code !== "ERR_MODULE_NOT_FOUND" && e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED")
                throw e;
        }
    }
    return null;
}

function schemaErrors(model, value) {
    try {
        new model(value).validate();
        return [];
    } catch (e) {
        if (!Array.isArray(e.errors))
            return [{ instancePath: "", message: e.message }];
        return e.errors;
    }
}

function describeSchemaError(e) {
    const p = e.params || {};
    if (e.keyword === "additionalProperties")
        return { extra: p.additionalProperty, message: "unknown field" };
    if (e.keyword === "enum")
        return { message: `${e.message}: ${(p.allowedValues || []).join(", ")}` };
    if (e.keyword === "required")
        return { extra: p.missingProperty, message: "required field missing" };
    return { message: e.message };
}

async function validateSchema(file, field, value, problems) {
    const { apiVersion, kind } = value;
    let model, checked = value, strip = "";
    if (apiVersion === undefined && kind === undefined) {
        // hksd's container fragment: its securityContext checked as a Pod container's
        model = await modelFor("v1", "Pod");
        checked = { apiVersion: "v1", kind: "Pod", metadata: { name: "fragment" },
                    spec: { containers: [{ name: "c", image: "i", securityContext: value.securityContext }] } };
        strip = "/spec/containers/0";
    } else {
        if (typeof apiVersion !== "string" || typeof kind !== "string") {
            problems.push(`${file}: ${field}${typeof kind === "string" ? "apiVersion" : "kind"}: required, a string`);
            return;
        }
        model = await modelFor(apiVersion, kind);
        if (!model) {
            problems.push(`${file}: ${field}kind: no schema for ${apiVersion} ${kind} in kubernetes-models`);
            return;
        }
    }
    for (const e of schemaErrors(model, checked)) {
        const d = describeSchemaError(e);
        let path = e.instancePath || "";
        if (strip && path.startsWith(strip))
            path = path.slice(strip.length);
        let f = fieldOf(path);
        if (d.extra)
            f = f ? `${f}.${d.extra}` : d.extra;
        problems.push(`${file}: ${field}${f || "(object)"}: ${d.message}`);
    }
}

// ---- the restricted rules ----

// The pod specs of an object, with their field paths.
function podSpecs(obj) {
    const spec = obj.spec;
    if (!isObject(spec))
        return [];
    switch (obj.kind) {
    case "Pod":
    case "Revision":
        return [{ spec, path: "spec" }];
    case "CronJob":
        return isObject(spec.jobTemplate?.spec?.template?.spec)
            ? [{ spec: spec.jobTemplate.spec.template.spec, path: "spec.jobTemplate.spec.template.spec" }] : [];
    default:
        return isObject(spec.template?.spec) ? [{ spec: spec.template.spec, path: "spec.template.spec" }] : [];
    }
}

function containersOf(podSpec, path) {
    const out = [];
    for (const list of ["initContainers", "containers", "ephemeralContainers"]) {
        (Array.isArray(podSpec[list]) ? podSpec[list] : []).forEach((c, i) => {
            if (isObject(c))
                out.push({ container: c, path: `${path}.${list}[${i}]` });
        });
    }
    return out;
}

// A container's securityContext against "restricted"; podSC is its pod's (may be {}).
function checkSecurityContext(sc, podSC, path, report) {
    sc = isObject(sc) ? sc : {};
    const at = (f) => `${path ? path + "." : ""}securityContext.${f}`;
    if (sc.privileged === true)
        report(at("privileged"), "must not be true (a privileged container is the host)");
    if (sc.allowPrivilegeEscalation !== false)
        report(at("allowPrivilegeEscalation"), "must be false (setuid binaries and file capabilities would raise privileges)");
    const caps = isObject(sc.capabilities) ? sc.capabilities : {};
    (Array.isArray(caps.add) ? caps.add : []).forEach((cap, i) =>
        report(at(`capabilities.add[${i}]`), `capability "${cap}" added: functions and builds get none`));
    const drop = Array.isArray(caps.drop) ? caps.drop : [];
    if (!drop.includes("ALL"))
        report(at("capabilities.drop"), 'must contain "ALL"');
    if ((sc.runAsNonRoot ?? podSC.runAsNonRoot) !== true)
        report(at("runAsNonRoot"), "must be true (here or in the pod's securityContext)");
    if ((sc.runAsUser ?? podSC.runAsUser) === 0)
        report(at("runAsUser"), "must not be 0 (root)");
    const seccomp = sc.seccompProfile ?? podSC.seccompProfile;
    if (!isObject(seccomp) || !RESTRICTED_SECCOMP.has(seccomp.type))
        report(at("seccompProfile.type"), `must be RuntimeDefault or Localhost (here or in the pod's securityContext), not ${seccomp?.type ?? "unset"}`);
    if (sc.procMount !== undefined && sc.procMount !== "Default")
        report(at("procMount"), "must be Default (an unmasked /proc exposes the host's)");
}

function checkPodSpec(podSpec, path, report) {
    for (const host of ["hostNetwork", "hostPID", "hostIPC"]) {
        if (podSpec[host] === true)
            report(`${path}.${host}`, "must not be true (the host's namespace)");
    }
    (Array.isArray(podSpec.volumes) ? podSpec.volumes : []).forEach((v, i) => {
        if (isObject(v) && v.hostPath !== undefined)
            report(`${path}.volumes[${i}].hostPath`, "host paths are not allowed");
    });
    const podSC = isObject(podSpec.securityContext) ? podSpec.securityContext : {};
    for (const { container, path: cpath } of containersOf(podSpec, path)) {
        checkSecurityContext(container.securityContext, podSC, cpath, report);
        (Array.isArray(container.ports) ? container.ports : []).forEach((p, i) => {
            if (isObject(p) && p.hostPort !== undefined)
                report(`${cpath}.ports[${i}].hostPort`, "host ports are not allowed");
        });
    }
}

function checkRestricted(value, report) {
    if (value.apiVersion === undefined && value.kind === undefined) {
        if (!isObject(value.securityContext))
            report("(object)", "neither a Kubernetes object (apiVersion, kind) nor a securityContext fragment");
        else
            checkSecurityContext(value.securityContext, {}, "", report);
        return;
    }
    for (const { spec, path } of podSpecs(value))
        checkPodSpec(spec, path, report);
    if (value.kind === "Namespace") {
        const level = value.metadata?.labels?.["pod-security.kubernetes.io/enforce"];
        if (level !== "restricted" && level !== "baseline")
            report('metadata.labels["pod-security.kubernetes.io/enforce"]',
                   `must be restricted or baseline, not ${level ?? "unset"}`);
    }
    if (value.kind === "ServiceAccount" && value.automountServiceAccountToken !== false)
        report("automountServiceAccountToken", "must be false (functions and builds do not talk to the API server)");
    if (value.kind === "NetworkPolicy") {
        const types = Array.isArray(value.spec?.policyTypes) ? value.spec.policyTypes : [];
        for (const t of ["Ingress", "Egress"]) {
            if (!types.includes(t))
                report("spec.policyTypes", `must list ${t} (otherwise that direction is not governed)`);
        }
    }
}

async function check(files) {
    const problems = [];
    for (const file of files) {
        for (const { value, field } of readDocuments(file, problems)) {
            if (!isObject(value)) {
                problems.push(`${file}: ${field}(document): must be a mapping`);
                continue;
            }
            await validateSchema(file, field, value, problems);
            checkRestricted(value, (f, message) => problems.push(`${file}: ${field}${f}: ${message}`));
        }
    }
    for (const p of problems)
        console.log(p);
    return problems.length ? 1 : 0;
}

// ---- diff ----

function loadDir(dir, problems) {
    const objects = new Map();
    let names = [];
    try {
        names = readdirSync(dir).filter((n) => /\.(ya?ml|json)$/.test(n) && !n.startsWith(".")).sort();
    } catch (e) {
        if (e.code !== "ENOENT")
            problems.push(`${dir}: cannot read: ${e.message}`);
    }
    for (const name of names) {
        for (const { value } of readDocuments(join(dir, name), problems)) {
            if (!isObject(value))
                continue;
            const id = value.kind ? `${value.kind}/${value.metadata?.name ?? "?"}` : "securityContext fragment";
            objects.set(`${name}#${id}`, { file: `kubernetes/${name}`, id, value });
        }
    }
    return objects;
}

function rank(table, v) {
    return table[v] ?? 0;
}

function diffSecurityContext(o, n, path, podO, podN, emit) {
    o = isObject(o) ? o : {};
    n = isObject(n) ? n : {};
    const at = (f) => `${path ? path + "." : ""}securityContext.${f}`;
    const addO = new Set(o.capabilities?.add ?? []), addN = new Set(n.capabilities?.add ?? []);
    for (const c of addN) if (!addO.has(c)) emit("loosened", at("capabilities.add"), `capability ${c} added`);
    for (const c of addO) if (!addN.has(c)) emit("tightened", at("capabilities.add"), `capability ${c} no longer added`);
    const dropO = new Set(o.capabilities?.drop ?? []), dropN = new Set(n.capabilities?.drop ?? []);
    for (const c of dropO) if (!dropN.has(c)) emit("loosened", at("capabilities.drop"), `${c} no longer dropped`);
    for (const c of dropN) if (!dropO.has(c)) emit("tightened", at("capabilities.drop"), `${c} now dropped`);
    const flag = (name, safe, oldV, newV) => {
        const wasSafe = oldV === safe, isSafe = newV === safe;
        if (wasSafe && !isSafe) emit("loosened", at(name), `${oldV} -> ${newV ?? "unset"}`);
        if (!wasSafe && isSafe) emit("tightened", at(name), `${oldV ?? "unset"} -> ${newV}`);
    };
    flag("allowPrivilegeEscalation", false, o.allowPrivilegeEscalation, n.allowPrivilegeEscalation);
    flag("runAsNonRoot", true, o.runAsNonRoot ?? podO.runAsNonRoot, n.runAsNonRoot ?? podN.runAsNonRoot);
    flag("readOnlyRootFilesystem", true, o.readOnlyRootFilesystem, n.readOnlyRootFilesystem);
    if ((o.privileged === true) !== (n.privileged === true))
        emit(n.privileged === true ? "loosened" : "tightened", at("privileged"), `${o.privileged ?? "unset"} -> ${n.privileged ?? "unset"}`);
    const userO = o.runAsUser ?? podO.runAsUser, userN = n.runAsUser ?? podN.runAsUser;
    if (userO !== userN)
        emit(userN === 0 ? "loosened" : userO === 0 ? "tightened" : "changed", at("runAsUser"), `${userO ?? "unset"} -> ${userN ?? "unset"}`);
    const secO = o.seccompProfile ?? podO.seccompProfile, secN = n.seccompProfile ?? podN.seccompProfile;
    const typeO = secO?.type, typeN = secN?.type;
    const strong = (t) => RESTRICTED_SECCOMP.has(t);
    if (typeO !== typeN || secO?.localhostProfile !== secN?.localhostProfile) {
        const kind = strong(typeO) && !strong(typeN) ? "loosened" : !strong(typeO) && strong(typeN) ? "tightened" : "changed";
        emit(kind, at("seccompProfile"), `${JSON.stringify(secO ?? null)} -> ${JSON.stringify(secN ?? null)}`);
    }
}

function diffPodSpec(o, n, path, emit) {
    for (const host of ["hostNetwork", "hostPID", "hostIPC"]) {
        if ((o[host] === true) !== (n[host] === true))
            emit(n[host] === true ? "loosened" : "tightened", `${path}.${host}`, `${o[host] ?? "unset"} -> ${n[host] ?? "unset"}`);
    }
    const hostPaths = (s) => new Set((s.volumes ?? []).filter((v) => v?.hostPath).map((v) => JSON.stringify(v.hostPath)));
    const hpO = hostPaths(o), hpN = hostPaths(n);
    for (const h of hpN) if (!hpO.has(h)) emit("loosened", `${path}.volumes`, `host path ${h} mounted`);
    for (const h of hpO) if (!hpN.has(h)) emit("tightened", `${path}.volumes`, `host path ${h} no longer mounted`);
    const podO = isObject(o.securityContext) ? o.securityContext : {};
    const podN = isObject(n.securityContext) ? n.securityContext : {};
    const byName = (s) => new Map(containersOf(s, path).map((c) => [c.container.name ?? c.path, c]));
    const cO = byName(o), cN = byName(n);
    for (const [name, c] of cN) {
        const old = cO.get(name);
        if (!old) {
            emit("changed", c.path, `container ${name} added`);
            checkSecurityContext(c.container.securityContext, podN, c.path,
                                 (f, m) => emit("loosened", f, m));
            continue;
        }
        diffSecurityContext(old.container.securityContext, c.container.securityContext, c.path, podO, podN, emit);
    }
    for (const [name, c] of cO) if (!cN.has(name)) emit("changed", c.path, `container ${name} removed`);
}

function diffRules(o, n, field, emit) {
    const set = (v) => new Set((Array.isArray(v) ? v : []).map((r) => JSON.stringify(r)));
    const rO = set(o), rN = set(n);
    for (const r of rN) if (!rO.has(r)) emit("loosened", field, `rule added: ${r}`);
    for (const r of rO) if (!rN.has(r)) emit("tightened", field, `rule removed: ${r}`);
}

function diffObject(o, n, emit) {
    if (o.apiVersion === undefined && o.kind === undefined) {
        diffSecurityContext(o.securityContext, n.securityContext, "", {}, {}, emit);
    } else {
        const pO = podSpecs(o), pN = podSpecs(n);
        pN.forEach((p, i) => { if (pO[i]) diffPodSpec(pO[i].spec, p.spec, p.path, emit); });
    }
    if (n.kind === "Namespace") {
        const key = "pod-security.kubernetes.io/enforce";
        const lO = o.metadata?.labels?.[key], lN = n.metadata?.labels?.[key];
        if (lO !== lN) {
            const d = rank(POD_SECURITY_LEVELS, lN) - rank(POD_SECURITY_LEVELS, lO);
            emit(d < 0 ? "loosened" : d > 0 ? "tightened" : "changed", `metadata.labels["${key}"]`, `${lO ?? "unset"} -> ${lN ?? "unset"}`);
        }
    }
    if (n.kind === "ServiceAccount" && (o.automountServiceAccountToken === false) !== (n.automountServiceAccountToken === false))
        emit(n.automountServiceAccountToken === false ? "tightened" : "loosened", "automountServiceAccountToken",
             `${o.automountServiceAccountToken ?? "unset"} -> ${n.automountServiceAccountToken ?? "unset"}`);
    if (n.kind === "NetworkPolicy") {
        const tO = new Set(o.spec?.policyTypes ?? []), tN = new Set(n.spec?.policyTypes ?? []);
        for (const t of tO) if (!tN.has(t)) emit("loosened", "spec.policyTypes", `${t} no longer governed`);
        for (const t of tN) if (!tO.has(t)) emit("tightened", "spec.policyTypes", `${t} now governed`);
        diffRules(o.spec?.ingress, n.spec?.ingress, "spec.ingress", emit);
        diffRules(o.spec?.egress, n.spec?.egress, "spec.egress", emit);
    }
}

// Leaves that changed, for everything the security comparison above does not read.
const SECURITY_FIELDS = /securityContext|hostNetwork|hostPID|hostIPC|volumes|automountServiceAccountToken|pod-security\.kubernetes\.io|policyTypes|ingress|egress|containers\[\d+\]$/;

function leaves(v, path, out) {
    if (isObject(v) && Object.keys(v).length) {
        for (const [k, x] of Object.entries(v)) leaves(x, path ? `${path}.${k}` : k, out);
    } else if (Array.isArray(v) && v.length) {
        v.forEach((x, i) => leaves(x, `${path}[${i}]`, out));
    } else {
        out.set(path, JSON.stringify(v));
    }
    return out;
}

function diff(oldDir, newDir) {
    const problems = [];
    const before = loadDir(oldDir, problems), after = loadDir(newDir, problems);
    if (problems.length) {
        for (const p of problems) console.error(p);
        return 2;
    }
    for (const [key, n] of after) {
        const emit = (kind, field, what) => console.log(`${kind}: ${n.file}: ${n.id}: ${field}: ${what}`);
        const o = before.get(key);
        if (!o) {
            emit(n.value.kind === "NetworkPolicy" ? "tightened" : "changed", "(object)", "added");
            if (n.value.kind !== "NetworkPolicy")
                checkRestricted(n.value, (f, m) => emit("loosened", f, m));
            continue;
        }
        diffObject(o.value, n.value, emit);
        const lO = leaves(o.value, "", new Map()), lN = leaves(n.value, "", new Map());
        for (const path of new Set([...lO.keys(), ...lN.keys()])) {
            if (lO.get(path) !== lN.get(path) && !SECURITY_FIELDS.test(path))
                emit("changed", path, `${lO.get(path) ?? "unset"} -> ${lN.get(path) ?? "unset"}`);
        }
    }
    for (const [key, o] of before) {
        if (!after.has(key))
            console.log(`${o.value.kind === "NetworkPolicy" ? "loosened" : "changed"}: ${o.file}: ${o.id}: (object): removed`);
    }
    return 0;
}

const [command, ...args] = process.argv.slice(2);
let status = 2;
if (command === "check" && args.length > 0)
    status = await check(args);
else if (command === "diff" && args.length === 2)
    status = diff(args[0], args[1]);
else
    console.error(`usage: ${basename(process.argv[1])} check FILE... | diff OLD_DIR NEW_DIR`);
process.exitCode = status;
