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

  // A step's value is fetched when its <details> is first opened (it may be large).
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.open || !details.hasAttribute("data-value") || details.hasAttribute("data-loaded")) {
      return;
    }
    details.setAttribute("data-loaded", "1");
    fetch(details.getAttribute("data-value"), { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) { details.querySelector("div").outerHTML = html; });
  }, true);

  // Live parts of a page are fetched again every few seconds and swapped in
  // place (no reload), unless the tab is hidden or the user is typing in them.
  function refresh(element) {
    var url = element.getAttribute("data-live");
    var separator = url.indexOf("?") >= 0 ? "&" : "?";
    var opened = element.querySelector("details[open]");
    if (document.hidden || opened || element.contains(document.activeElement)) {
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
