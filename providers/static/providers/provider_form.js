// Provider account form in admin: show only the credentials of the provider kind chosen.
// Every kind's fieldset is in the page (class "provider-kind provider-kind-<slug>"); without this
// script they all show, each saying which kind it is for, and the server reads only the chosen one.
"use strict";
(function () {
  function update(select) {
    var chosen = select.value;
    document.querySelectorAll("fieldset.provider-kind").forEach(function (fieldset) {
      var mine = fieldset.classList.contains("provider-kind-" + chosen);
      fieldset.hidden = !mine;
      fieldset.setAttribute("aria-hidden", mine ? "false" : "true");
    });
    var none = document.getElementById("provider-kind-none");
    if (none) {
      none.hidden = chosen !== "";
    }
  }

  function start() {
    var select = document.getElementById("id_slug");
    if (!select || !document.querySelector("fieldset.provider-kind")) {
      return;
    }
    var first = document.querySelector("fieldset.provider-kind");
    if (!document.getElementById("provider-kind-none")) {
      var hint = document.createElement("p");
      hint.id = "provider-kind-none";
      hint.className = "help provider-kind-none";
      hint.textContent = select.getAttribute("data-choose-first") || "";
      first.parentNode.insertBefore(hint, first);
    }
    select.addEventListener("change", function () {
      update(select);
    });
    update(select);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
