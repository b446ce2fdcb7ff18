// fulfillment admin: small conveniences only. Every page works without this
// file: the "Add line" and "Remove" buttons are real submit buttons that
// re-render the form on the server; here they act in the page instead.
(function () {
  "use strict";

  // Line rows of the order form: add and remove without a round trip.
  function renumber(body) {
    var rows = body.querySelectorAll("[data-line-row]");
    rows.forEach(function (row, i) {
      row.querySelectorAll("[name], [id], [value]").forEach(function (el) {
        if (el.name) el.name = el.name.replace(/^lines\[\d+\]/, "lines[" + i + "]");
        if (el.id) el.id = el.id.replace(/^lines-\d+-/, "lines-" + i + "-");
        if (el.hasAttribute("data-remove-line")) el.value = String(i);
      });
    });
  }

  document.addEventListener("click", function (ev) {
    var target = ev.target instanceof Element ? ev.target : null;
    if (!target) return;
    var add = target.closest("[data-add-line]");
    var remove = target.closest("[data-remove-line]");
    if (add) {
      var form = add.form;
      var tpl = form && form.querySelector("#line-row-template");
      var body = form && form.querySelector("[data-line-rows]");
      if (!tpl || !body) return;
      ev.preventDefault();
      var index = body.querySelectorAll("[data-line-row]").length;
      var html = tpl.innerHTML.replace(/__I__/g, String(index));
      body.insertAdjacentHTML("beforeend", html);
      var rows = body.querySelectorAll("[data-line-row]");
      var first = rows[rows.length - 1].querySelector("input");
      if (first) first.focus();
    } else if (remove) {
      var row = remove.closest("[data-line-row]");
      var tbody = row && row.parentElement;
      if (!row || !tbody) return;
      ev.preventDefault();
      if (tbody.querySelectorAll("[data-line-row]").length > 1) {
        row.remove();
      } else {
        row.querySelectorAll("input").forEach(function (el) { el.value = ""; });
      }
      renumber(tbody);
    }
  });

  // Forms that change something hard to undo ask first.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) ev.preventDefault();
  });
})();
