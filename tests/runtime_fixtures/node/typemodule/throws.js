import { word } from './word.js';

function fail() {
  throw new SyntaxError(`bad ${word}`);
}
fail();
