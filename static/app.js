// Progressive enhancements only: every page works without this file.
(function () {
  // Toasts sent by the server through the HX-Trigger header: {"toast": [{level, message}]}
  document.body.addEventListener("toast", function (evt) {
    var items = Array.isArray(evt.detail.value) ? evt.detail.value : [evt.detail];
    var box = document.getElementById("toasts");
    items.forEach(function (t) {
      var el = document.createElement("div");
      el.className = "toast msg msg-" + (t.level || "success");
      el.setAttribute("role", "status");
      el.textContent = t.message;
      box.appendChild(el);
      setTimeout(function () { el.remove(); }, 6000);
    });
  });
  // "Select this page" checkbox in a table header.
  document.addEventListener("change", function (evt) {
    if (!evt.target.matches("[data-select-page]")) return;
    var form = evt.target.closest("form");
    form.querySelectorAll('input[name="ids"]').forEach(function (cb) { cb.checked = evt.target.checked; });
  });
})();
