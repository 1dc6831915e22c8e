'use strict';
exports.shout = (s) => `${s.toUpperCase()}!`;
