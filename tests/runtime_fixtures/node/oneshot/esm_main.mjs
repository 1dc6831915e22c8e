// ESM entry: static import of a sibling, top-level await, import.meta.
import { double } from './esm_helper.mjs';

const value = await Promise.resolve(21);
console.log(JSON.stringify({ url: import.meta.url, doubled: double(value), argv: process.argv.slice(2),
  mainModule: typeof process.mainModule, requireType: typeof require }));
