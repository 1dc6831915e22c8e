export const word = 'esm';
