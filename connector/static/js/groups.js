// The group builder's small comfort: a step's hint names the properties of the event
// chosen for it, as soon as it is chosen. The page works without it (the hint follows
// after the next round trip).
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("select[data-properties-for]"),
    function (select) {
      var hint = document.getElementById(
        "step-properties-" + select.getAttribute("data-properties-for"));
      if (!hint) { return; }
      var show = function () {
        var option = select.options[select.selectedIndex];
        var properties = option ? option.getAttribute("data-properties") : "";
        if (properties) {
          hint.textContent = "Properties of this event: " + properties + ".";
        } else {
          hint.textContent = select.value
            ? "This event has no known properties, so it cannot be filtered."
            : "";
        }
      };
      select.addEventListener("change", show);
      show();  // a choice made while the page was still loading
    });
})();
