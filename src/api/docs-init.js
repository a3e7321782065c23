// Starts Swagger UI on /docs. A file of its own so the page's CSP can forbid inline scripts.
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // No call to the public validator service: nothing leaves the engine's origin.
  validatorUrl: null,
});
