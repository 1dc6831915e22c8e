// Builds the dashboard into dist/: one bundle of the app (Preact, htm, uPlot) and one stylesheet,
// each named after a hash of its content under dist/assets/, and index.html naming them. Nothing
// is loaded from elsewhere at run time (hksd serves dist/ with a CSP of 'self' only).
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });

const result = await build({
  entryPoints: { app: join(here, 'src', 'main.js') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115'],
  outdir: join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

let script = null;
let style = null;
for (const [path, out] of Object.entries(result.metafile.outputs)) {
  if (!out.entryPoint) continue;
  script = basename(path);
  if (out.cssBundle) style = basename(out.cssBundle);
}
if (!script || !style) throw new Error('the build made no script or no stylesheet');

const page = readFileSync(join(here, 'index.html'), 'utf8')
  .replace('%SCRIPT%', 'assets/' + script)
  .replace('%STYLE%', 'assets/' + style);
writeFileSync(join(dist, 'index.html'), page);
copyFileSync(join(here, 'favicon.svg'), join(dist, 'favicon.svg'));
console.log('dist/index.html, dist/assets/' + script + ', dist/assets/' + style);
