import { double } from './esm_helper.mjs';

console.log(double(2));
throw new Error('thrown by an ES module');
