/* paysim run report: jump to a trace by order id; open traces reached through links. No libraries. */
(function () {
  "use strict";
  var msg = document.getElementById("jump-msg");

  function say(text) { if (msg) { msg.textContent = text; } }

  function find(text) {
    var id = (text || "").trim();
    if (!id) { return null; }
    var el = document.getElementById("trace-" + id);
    if (el) { return el; }
    var needle = id.toLowerCase();
    var all = document.querySelectorAll("details.trace");
    for (var i = 0; i < all.length; i++) {
      if (all[i].id.toLowerCase().indexOf(needle) !== -1) { return all[i]; }
    }
    return null;
  }

  function show(el, updateHash) {
    el.open = true;
    el.scrollIntoView({ block: "start" });
    el.classList.add("hl");
    window.setTimeout(function () { el.classList.remove("hl"); }, 1800);
    if (updateHash && history.replaceState) { history.replaceState(null, "", "#" + el.id); }
    say("");
  }

  function jump(text) {
    var el = find(text);
    if (el) { show(el, true); } else if (text) { say(text + " is not among the traces in this report."); }
  }

  var form = document.getElementById("jump");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      jump(document.getElementById("jump-input").value);
    });
  }
  var select = document.getElementById("jump-select");
  if (select) {
    select.addEventListener("change", function () { jump(select.value); select.value = ""; });
  }
  document.querySelectorAll("[data-expand]").forEach(function (button) {
    button.addEventListener("click", function () {
      var open = button.getAttribute("data-expand") === "1";
      document.querySelectorAll("details.trace").forEach(function (d) { d.open = open; });
    });
  });

  function fromHash() {
    var h = decodeURIComponent(location.hash || "");
    if (h.indexOf("#trace-") === 0) {
      var el = document.getElementById(h.slice(1));
      if (el) { show(el, false); }
    } else if (h.length > 1) {  // a break, a day...: open the collapsed blocks around it
      var target = document.getElementById(h.slice(1)), opened = false;
      for (var p = target && target.parentElement; p; p = p.parentElement) {
        if (p.tagName === "DETAILS" && !p.open) { p.open = true; opened = true; }
      }
      if (opened) { target.scrollIntoView({ block: "start" }); }
    }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
