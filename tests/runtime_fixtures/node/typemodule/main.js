// An ES module by package.json "type": "module".
import { basename } from 'node:path';
import { word } from './word.js';

await null;
console.log(`${word} from ${basename(new URL(import.meta.url).pathname)}`);
