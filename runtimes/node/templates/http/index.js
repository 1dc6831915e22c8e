/**
 * Your HTTP function, called once for every request. This example answers
 * every request with "OK" and logs the query string and the request body.
 *
 * Call it with `func invoke` (or any HTTP client); test it with `npm test`.
 *
 * @param {Context} context - information about the request:
 * @param {object} context.query - the query string parameters, if any
 * @param {object} context.log - a logger with 'info', 'warn', 'error', 'debug', ...
 * @param {object} context.headers - the HTTP request headers
 * @param {string} context.method - the HTTP request method
 * @param {string} context.httpVersion - the HTTP protocol version
 * @param {object} body - the request body, if any: parsed JSON, a string,
 *   form fields or a Buffer, depending on the content type
 * @returns {object} the response: { body, headers, statusCode }
 *
 * See: https://github.com/knative/func/blob/main/docs/function-templates/nodejs.md#the-context-object
 */
const handle = async (context, body) => {
  // YOUR CODE HERE
  context.log.info("query", context.query);
  context.log.info("body", body);

  return { body: "OK" };
}

// Export the function
module.exports = { handle };
