'use strict';
Promise.reject(42);
