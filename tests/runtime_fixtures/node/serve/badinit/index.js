'use strict';
module.exports = {
  handle: () => 'never',
  init: () => {
    throw new Error('init refuses to start');
  },
};
