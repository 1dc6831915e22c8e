'use strict';
Promise.reject(new Error('rejected at top level'));
