// Starts Swagger UI on the /docs page. A file rather than an inline script, so that the page keeps the
// service's Content-Security-Policy (scripts from this server only); nothing is fetched from elsewhere.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null, // no badge from validator.swagger.io
    presets: [SwaggerUIBundle.presets.apis],
  });
});
