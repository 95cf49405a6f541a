// Live progress without a full reload: fetch the fragment every 2 s and swap it in.
// When the run finishes (the fragment comes back without a poll URL), reload the
// page once so the run history and the chart beside it show the finished run too.
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
          if (!fresh.hasAttribute("data-poll-url")) {
            window.location.reload();
            return;
          }
          block.replaceWith(fresh);
          poll(fresh);
        })
        .catch(function () { poll(block); });
    }, 2000);
  }
  document.querySelectorAll("[data-poll-url]").forEach(poll);
})();
