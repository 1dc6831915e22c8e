'use strict';
console.log('héllo wörld ✓ 日本語 🎉');
console.error('ërror ✗');
