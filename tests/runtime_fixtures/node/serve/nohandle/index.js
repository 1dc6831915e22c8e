'use strict';
module.exports = { notAHandler: true };
