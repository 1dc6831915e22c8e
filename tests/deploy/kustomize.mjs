// The part of `kubectl kustomize` that deploy/kustomization.yaml uses, for machines without
// kubectl (Debian 12 has no kustomize): resources (files), namespace, labels (metadata only),
// configMapGenerator (files, with kustomize's content-hash name suffix and the references to the
// ConfigMap renamed) and images. A field it does not implement is an error, never ignored, so the
// rendering cannot silently differ from kustomize's. tests/integration/test_deploy_manifests.py
// compares it with a real `kubectl kustomize` wherever kubectl is installed.
//
//   node kustomize.mjs DIR   -> the rendered objects as a JSON array on stdout

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";

// kubectl reads YAML 1.1 (0400 is octal there); duplicate keys are errors
function loadYamlStream(file) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { version: "1.1", uniqueKeys: true });
  const objects = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) objects.push(value);
  }
  return objects;
}

const SUPPORTED = new Set([
  "apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator", "images",
]);

// kinds without a namespace (the ones a deploy/ may hold)
const CLUSTER_SCOPED = new Set([
  "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
  "StorageClass", "PersistentVolume", "ValidatingWebhookConfiguration",
  "MutatingWebhookConfiguration", "RuntimeClass", "IngressClass",
]);

// kustomize's "legacy" output order (api/resid/gvk.go orderFirst); other kinds follow by
// kind, then name
const ORDER_FIRST = [
  "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
  "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap",
  "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
  "PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget",
];
const ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];

function kindRank(kind) {
  const first = ORDER_FIRST.indexOf(kind);
  if (first >= 0) return first - ORDER_FIRST.length;
  const last = ORDER_LAST.indexOf(kind);
  return last >= 0 ? 1 + last : 0;
}

// Go's encoding/json: keys sorted, no spaces, <, >, &, U+2028 and U+2029 escaped
function goJson(value) {
  const sorted = (v) => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === "object")
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]));
    return v;
  };
  return JSON.stringify(sorted(value)).replace(/[<>&\u2028\u2029]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

// api/hasher: sha256 of {"data","kind","name"(,"binaryData")} as Go JSON, first 10 hex digits
// with 0,1,3,a,e swapped for letters that avoid bad words. The name kustomize 5 hashes for a
// generated ConfigMap is empty (checked against kubectl 1.32's kustomize 5.5: the suffix matches
// only so).
function configMapHash(cm) {
  const encoded = { kind: "ConfigMap", name: "", data: cm.data ?? {} };
  if (cm.binaryData && Object.keys(cm.binaryData).length) encoded.binaryData = cm.binaryData;
  const hex = createHash("sha256").update(goJson(encoded)).digest("hex");
  const swap = { 0: "g", 1: "h", 3: "k", a: "m", e: "t" };
  return [...hex.slice(0, 10)].map((c) => swap[c] ?? c).join("");
}

function generateConfigMaps(dir, generators) {
  return (generators ?? []).map((g) => {
    for (const key of Object.keys(g))
      if (!["name", "files"].includes(key))
        throw new Error(`configMapGenerator.${key}: not implemented by this renderer`);
    const data = {};
    for (const entry of g.files ?? []) {
      const [key, file] = entry.includes("=") ? entry.split("=", 2) : [path.basename(entry), entry];
      data[key] = readFileSync(path.join(dir, file), "utf8");
    }
    return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: g.name }, data };
  });
}

function podSpecOf(object) {
  if (object.kind === "Pod") return object.spec;
  if (object.kind === "CronJob") return object.spec?.jobTemplate?.spec?.template?.spec;
  return object.spec?.template?.spec;
}

function renameConfigMapReferences(object, renames) {
  const spec = podSpecOf(object);
  if (!spec) return;
  const rename = (ref) => {
    if (ref && renames.has(ref.name)) ref.name = renames.get(ref.name);
  };
  for (const volume of spec.volumes ?? []) {
    rename(volume.configMap);
    for (const source of volume.projected?.sources ?? []) rename(source.configMap);
  }
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    for (const env of c.env ?? []) rename(env.valueFrom?.configMapKeyRef);
    for (const from of c.envFrom ?? []) rename(from.configMapRef);
  }
}

function setImages(object, images) {
  const spec = podSpecOf(object);
  if (!spec) return;
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    const at = c.image.lastIndexOf("@");
    const colon = c.image.lastIndexOf(":");
    const cut = at >= 0 ? at : colon > c.image.lastIndexOf("/") ? colon : c.image.length;
    const name = c.image.slice(0, cut);
    const image = images.find((i) => i.name === name);
    if (!image) continue;
    const newName = image.newName ?? name;
    if (image.digest) c.image = `${newName}@${image.digest}`;
    else if (image.newTag) c.image = `${newName}:${image.newTag}`;
    else c.image = newName + c.image.slice(cut);
  }
}

export function render(dir) {
  const kustomization = loadYamlStream(path.join(dir, "kustomization.yaml"))[0];
  for (const key of Object.keys(kustomization))
    if (!SUPPORTED.has(key)) throw new Error(`kustomization.yaml: ${key}: not implemented by this renderer`);
  if (kustomization.kind !== "Kustomization")
    throw new Error("kustomization.yaml: kind must be Kustomization");

  const objects = [];
  for (const resource of kustomization.resources ?? []) {
    if (/^[a-z]+:\/\//.test(resource) || !/\.ya?ml$/.test(resource))
      throw new Error(`resources: ${resource}: only local YAML files are implemented`);
    objects.push(...loadYamlStream(path.join(dir, resource)));
  }
  const generated = generateConfigMaps(dir, kustomization.configMapGenerator);
  objects.push(...generated);

  for (const object of objects) {
    if (kustomization.namespace && !CLUSTER_SCOPED.has(object.kind))
      object.metadata.namespace = kustomization.namespace;
    for (const entry of kustomization.labels ?? []) {
      for (const key of Object.keys(entry))
        if (!["pairs", "includeSelectors"].includes(key) || (key === "includeSelectors" && entry[key]))
          throw new Error(`labels.${key}: only pairs with includeSelectors: false are implemented`);
      object.metadata.labels = { ...(object.metadata.labels ?? {}), ...entry.pairs };
    }
  }
  // the suffix comes from the final content (namespace and labels do not enter the hash)
  const renames = new Map();
  for (const cm of generated) {
    const hashed = `${cm.metadata.name}-${configMapHash(cm)}`;
    renames.set(cm.metadata.name, hashed);
    cm.metadata.name = hashed;
  }
  for (const object of objects) {
    renameConfigMapReferences(object, renames);
    setImages(object, kustomization.images ?? []);
  }
  const key = (o) => [kindRank(o.kind), o.kind, o.metadata.namespace ?? "", o.metadata.name];
  return objects.sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    process.stdout.write(JSON.stringify(render(process.argv[2] ?? "deploy"), null, 2) + "\n");
  } catch (e) {
    process.stderr.write(`kustomize.mjs: ${e.message}\n`);
    process.exit(1);
  }
}
