// durable ui: confirmations and live updates, in plain JavaScript (no library, no network).
(function () {
  "use strict";

  // Every state-changing form asks first.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Live parts of a page are fetched again every few seconds and swapped in
  // place (no reload), unless the tab is hidden or the user is typing in them.
  function refresh(element) {
    var url = element.getAttribute("data-live");
    var separator = url.indexOf("?") >= 0 ? "&" : "?";
    if (document.hidden || element.contains(document.activeElement)) {
      return Promise.resolve();
    }
    return fetch(url + separator + "partial=1", { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null && html !== element.getAttribute("data-html")) {
          element.innerHTML = html;
          element.setAttribute("data-html", html);
          element.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* the server is restarting: try again next time */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // Each live part at its own pace: data-every (ms), else every two seconds.
    document.querySelectorAll("[data-live]").forEach(function (element) {
      var every = parseInt(element.getAttribute("data-every") || "2000", 10);
      window.setInterval(function () { refresh(element); }, every);
    });
  });
})();
