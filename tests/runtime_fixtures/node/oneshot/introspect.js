'use strict';
// What the program sees of its own process; compared between the launcher and bare node.
const fs = require('fs');
// Open sockets of this process (the launcher's control socket must not be one of them).
const sockets = fs.readdirSync('/proc/self/fd').filter((fd) => {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
  } catch (_) {
    return false;
  }
}).length;
const out = {
  argv: process.argv,
  argv0: process.argv0,
  execArgv: process.execArgv,
  cwd: process.cwd(),
  mainIsModule: require.main === module,
  mainModuleIsModule: process.mainModule === module,
  moduleId: module.id,
  parent: module.parent === null ? null : typeof module.parent,
  cache: Object.keys(require.cache),
  globals: Object.getOwnPropertyNames(globalThis).sort(),
  resources: process.getActiveResourcesInfo(),
  listeners: ['exit', 'beforeExit', 'uncaughtException', 'unhandledRejection', 'warning', 'SIGTERM', 'SIGINT']
    .map((e) => [e, process.listenerCount(e)]),
  sockets,
  env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('HKS_T_'))),
};
console.log(JSON.stringify(out));
