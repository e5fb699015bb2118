// Small behaviours of the staff UI. They live in this file, not in the templates: the
// Content-Security-Policy refuses inline scripts, event-handler attributes (onchange=...) and
// htmx's eval-based features (hx-on, trigger filters). Each is switched on by a data- attribute.
(function () {
  "use strict";

  // <select data-autosubmit>: choosing an option submits its form.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.matches && field.matches("[data-autosubmit]") && field.form) {
      field.form.requestSubmit();
    }
  });

  // <button data-menu aria-controls="panel" aria-expanded="false">: shows and hides that panel
  // (on phones, the main navigation; the CSS hides it while aria-expanded is "false"). Escape
  // closes an open one and gives the focus back to its button.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-menu]");
    if (!button) return;
    button.setAttribute("aria-expanded", button.getAttribute("aria-expanded") === "true" ? "false" : "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll('[data-menu][aria-expanded="true"]').forEach(function (button) {
      var panel = document.getElementById(button.getAttribute("aria-controls"));
      var inside = document.activeElement === button || (panel && panel.contains(document.activeElement));
      if (!inside) return;
      button.setAttribute("aria-expanded", "false");
      button.focus();
    });
  });

  // <form data-confirm="Question?">: submitted only once confirmed.
  document.addEventListener(
    "submit",
    function (event) {
      var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  // <input data-select-on-focus>: its whole value is selected on focus (keys to copy).
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) {
      event.target.select();
    }
  });

  // <button data-copy="#field">: copies that field's value, and says so on the button.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    var field = button && document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    var done = function () {
      button.textContent = button.getAttribute("data-copied") || "Copied";
    };
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        if (document.execCommand("copy")) done();
      });
    } else if (document.execCommand("copy")) {
      done();
    }
  });

  // <form hx-post data-upload-progress="#progress">: the <progress> follows the upload.
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest && event.target.closest("[data-upload-progress]");
    var bar = form && document.querySelector(form.getAttribute("data-upload-progress"));
    if (bar && event.detail.total) {
      bar.value = Math.round((100 * event.detail.loaded) / event.detail.total);
    }
  });

  // <div hx-get hx-trigger="poll" data-poll-while="#form" data-poll-every="700">: polled
  // while that form's htmx request is on its way (e.g. an import's progress), not otherwise.
  var timers = new Map();
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (!form.id || form.tagName !== "FORM") return;
    document.querySelectorAll('[data-poll-while="#' + form.id + '"]').forEach(function (el) {
      var every = parseInt(el.getAttribute("data-poll-every"), 10) || 1000;
      var timer = window.setInterval(function () {
        if (document.body.contains(el)) window.htmx.trigger(el, "poll");
      }, every);
      timers.set(form, (timers.get(form) || []).concat([timer]));
    });
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    (timers.get(form) || []).forEach(window.clearInterval);
    timers.delete(form);
  });
})();
