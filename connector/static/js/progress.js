// Live progress without a full reload: fetch the fragment every 2 s and swap it in,
// until the server sends a fragment without a poll URL (the run has finished).
(function () {
  "use strict";
  function poll(block) {
    var url = block.getAttribute("data-poll-url");
    if (!url) { return; }
    window.setTimeout(function () {
      fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html.trim();
          var fresh = holder.firstElementChild;
          block.replaceWith(fresh);
          poll(fresh);
        })
        .catch(function () { poll(block); });
    }, 2000);
  }
  document.querySelectorAll("[data-poll-url]").forEach(poll);
})();
