// The slot page's offers, refreshed without a reload: fetch the fragment every few seconds
// while the tab is visible. No inline script (the CSP allows only 'self').
(function () {
  "use strict";
  var box = document.getElementById("slot-offers");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-poll-url");
  var seconds = parseInt(box.getAttribute("data-poll-seconds"), 10) || 15;
  function refresh() {
    if (document.hidden) { return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (resp) { return resp.ok ? resp.text() : null; })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } })
      .catch(function () { /* offline for a moment: try again next time */ });
  }
  window.setInterval(refresh, seconds * 1000);
}());
