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

  // The selection bar's count, live (the server renders the same text after a round trip).
  var count = document.getElementById("selected-count");
  var pageHint = document.getElementById("page-hint");
  if (count) {
    var recount = function () {
      var all = allBox && allBox.checked;
      count.textContent = all
        ? count.getAttribute("data-all")
        : boxes.filter(function (b) { return b.checked; }).length + " selected";
      if (pageHint) { pageHint.hidden = !!all; }
    };
    // After the handlers above, which may tick boxes themselves.
    var form = document.getElementById("plan-form");
    if (form) { form.addEventListener("change", recount); }
    recount();
  }

  // Events measured in time get "lower than baseline" when the option is on and the
  // metric is numeric: the rows' default says so, and follows the options.
  var durations = document.getElementById("id_durations_lower");
  var kind = document.getElementById("id_kind");
  var timed = document.querySelectorAll("select[data-duration-unit]");
  var note = document.getElementById("inferred-note");
  var inferRows = function () {
    var n = 0;
    Array.prototype.forEach.call(timed, function (select) {
      var numeric = kind && (kind.value === "numeric" ||
        (kind.value === "auto" && select.hasAttribute("data-numeric")));
      var applies = !!(durations && durations.checked && numeric);
      select.options[0].textContent = applies
        ? "Lower (inferred from " + select.getAttribute("data-duration-unit") + ")"
        : "As above";
      select.classList.toggle("inferred", applies);
      if (applies) { n += 1; }
    });
    if (note) {
      note.hidden = n === 0;
      note.textContent = n + (n === 1 ? " event on this page is" : " events on this page are") +
        " measured in time: lower than baseline was inferred from the unit. " +
        "Change any in the Success column.";
    }
  };
  if (durations && timed.length) {
    durations.addEventListener("change", inferRows);
    if (kind) { kind.addEventListener("change", inferRows); }
  }

  // A row's own criterion: marked, so that it stays shown when the row is unticked.
  Array.prototype.forEach.call(document.querySelectorAll('select[name^="criterion-"]'),
    function (select) {
      select.addEventListener("change", function () {
        select.classList.toggle("set", select.value !== "");
      });
    });

  // A row's filters: typing in its last field offers one more, so that an event can get
  // several filtered metrics at once (without JS, one more field per round trip).
  var FILTERS_MAX = 5;
  Array.prototype.forEach.call(document.querySelectorAll(".filter-fields"), function (box) {
    box.addEventListener("input", function (event) {
      var fields = box.querySelectorAll("input");
      var last = fields[fields.length - 1];
      if (event.target !== last || !last.value.trim() || fields.length >= FILTERS_MAX) {
        return;
      }
      var more = last.cloneNode(false);
      more.value = "";
      more.setAttribute("aria-label", last.getAttribute("aria-label")
        .replace(/^(Filter|Another filter)/, "Another filter"));
      box.appendChild(more);
      // Keep its "Add a filter" shown, as the server does for a row with filters.
      var row = box.closest("tr");
      var toggle = row && document.querySelector('[aria-controls="' + row.id + '"]');
      if (toggle && toggle.parentElement) { toggle.parentElement.classList.add("set"); }
    });
  });

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
