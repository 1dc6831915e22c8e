// An ES module function with named exports.
import { setTimeout as sleep } from 'node:timers/promises';

export async function handle(context) {
  await sleep(1);
  return { body: { esm: true, method: context.method, who: context.query.who ?? null } };
}

export function readiness() {
  return 'esm ready';
}
