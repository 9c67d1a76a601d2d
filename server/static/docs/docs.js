// Starts Swagger UI on the API document (a file of its own so the page needs no inline script under CSP).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-url"),
    domNode: root,
    deepLinking: true,
    validatorUrl: null, // no calls to validator.swagger.io: the page works offline
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
})();
