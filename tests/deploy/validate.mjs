// Validate Kubernetes objects with kubernetes-models (the OpenAPI schemas of the Kubernetes API):
// every object needs a model for its apiVersion and kind, and must pass its schema.
//
//   node validate.mjs FILE   FILE: a JSON array of objects ("-" for stdin)
// prints one line per object ("ok Kind/name" or "invalid Kind/name: reason"); exit 1 if any is
// invalid or unknown.

import { readFileSync } from "node:fs";

async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string")
    throw new Error("apiVersion and kind must be strings");
  // core "v1" -> kubernetes-models/v1, "apps/v1" -> kubernetes-models/apps/v1
  const module = await import(`kubernetes-models/${apiVersion}`).catch(() => null);
  const Model = module?.[kind];
  if (typeof Model !== "function") throw new Error(`no model for ${apiVersion} ${kind}`);
  return Model;
}

export async function validate(objects) {
  const results = [];
  for (const object of objects) {
    const label = `${object?.kind}/${object?.metadata?.name}`;
    try {
      const Model = await modelFor(object?.apiVersion, object?.kind);
      new Model(structuredClone(object)).validate();
      results.push({ ok: true, label });
    } catch (e) {
      results.push({ ok: false, label, reason: e.message.split("\n")[0] });
    }
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2] ?? "-";
  const objects = JSON.parse(readFileSync(file === "-" ? 0 : file, "utf8"));
  if (!Array.isArray(objects) || objects.length === 0) {
    process.stderr.write("validate.mjs: expected a non-empty JSON array of objects\n");
    process.exit(1);
  }
  const results = await validate(objects);
  for (const r of results) process.stdout.write(r.ok ? `ok ${r.label}\n` : `invalid ${r.label}: ${r.reason}\n`);
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}
