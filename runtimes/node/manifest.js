'use strict';
// HKS Functions: prints the manifest of the Node.js runtime as one JSON object on stdout.
// Node built-in modules only; meant to run inside the sandbox:
//   hks-sandbox --ro-bind runtimes/node:/hks/runtime -- /usr/bin/node /hks/runtime/manifest.js
//
// "modules" lists what a program can load with require()/import by bare name: the built-in
// modules (sorted), then any module installed where node looks for global modules
// (NODE_PATH and require('module').globalPaths), sorted.

const fs = require('fs');
const path = require('path');
const Module = require('module');

function installedIn(dir) {
  const found = [];
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (_) {
    return found;
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    if (e.name.startsWith('@') && isDir(full)) {
      for (const s of safeReaddir(full)) {
        if (!s.startsWith('.') && isModule(path.join(full, s))) found.push(`${e.name}/${s}`);
      }
    } else if (isModule(full)) {
      found.push(e.name.replace(/\.(js|cjs|mjs|json|node)$/, ''));
    }
  }
  return found;
}

function safeReaddir(dir) {
  try {
    return fs.readdirSync(dir);
  } catch (_) {
    return [];
  }
}

function isDir(p) {
  try {
    return fs.statSync(p).isDirectory();
  } catch (_) {
    return false;
  }
}

// A directory with a package.json or an index file, or a loadable file.
function isModule(p) {
  let st;
  try {
    st = fs.statSync(p);
  } catch (_) {
    return false;
  }
  if (st.isDirectory()) {
    return ['package.json', 'index.js', 'index.cjs', 'index.mjs', 'index.json', 'index.node']
      .some((f) => fs.existsSync(path.join(p, f)));
  }
  return st.isFile() && /\.(js|cjs|mjs|json|node)$/.test(p);
}

const builtins = [...new Set(Module.builtinModules)].sort();
const dirs = [...(process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean), ...Module.globalPaths];
const globals = new Set();
for (const dir of dirs) {
  for (const name of installedIn(path.resolve(dir))) {
    if (!builtins.includes(name)) globals.add(name);
  }
}

const manifest = {
  name: 'node',
  version: process.versions.node,
  entry: {
    oneshot: 'main.js / index.js / any .js or .mjs',
    serve: 'index.js exporting handle',
  },
  modules: builtins.concat([...globals].sort()),
};

process.stdout.write(JSON.stringify(manifest) + '\n');
