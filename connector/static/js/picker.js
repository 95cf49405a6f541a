// The picker's small comforts; every page works without them.
(function () {
  "use strict";

  // "Select every event on this page": a header checkbox, shown only with JS.
  var pageBox = document.getElementById("check-page");
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name="event"]'));
  if (pageBox && boxes.length) {
    var sync = function () {
      var checked = boxes.filter(function (b) { return b.checked; }).length;
      pageBox.checked = checked === boxes.length;
      pageBox.indeterminate = checked > 0 && checked < boxes.length;
    };
    pageBox.hidden = false;
    pageBox.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = pageBox.checked; });
      sync();
    });
    boxes.forEach(function (b) { b.addEventListener("change", sync); });
    sync();
  }

  // "Select all matching" covers every page: show that by checking the visible rows.
  var allBox = document.getElementById("select-all-matching");
  if (allBox) {
    allBox.addEventListener("change", function () {
      if (allBox.checked) {
        boxes.forEach(function (b) { b.checked = true; });
        if (pageBox) { pageBox.checked = true; pageBox.indeterminate = false; }
      }
    });
  }

  // The percentile field only matters for percentile analysis.
  var analysis = document.getElementById("id_analysis");
  var dependents = document.querySelectorAll("[data-show-when-analysis]");
  if (analysis && dependents.length) {
    var toggle = function () {
      Array.prototype.forEach.call(dependents, function (input) {
        var field = input.closest(".field") || input;
        field.hidden = analysis.value !== input.getAttribute("data-show-when-analysis");
      });
    };
    analysis.addEventListener("change", toggle);
    toggle();
  }
})();
