// report.html (zoo.bench.page): sortable tables, the variant filter, tabs, opening a cell's detail view.
// Written for this page only; without it every section is shown in turn and nothing is lost.
(function () {
  "use strict";

  // --- sorting: a header's button sorts its table's first row group by that column (floors stay below) ---
  function sortKey(cell, numeric) {
    var raw = cell.getAttribute("data-value");
    if (raw === null || raw === "") { return null; }
    if (!numeric) { return raw.toLowerCase(); }
    var n = Number(raw);
    return isNaN(n) ? null : n;
  }

  function sortTable(th) {
    var table = th.closest("table");
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "number";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortKey(a.cells[index], numeric), y = sortKey(b.cells[index], numeric);
      if (x === y) { return 0; }
      if (x === null) { return 1; }  // missing values last, whichever the direction
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(th.parentNode.children, function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  document.querySelectorAll("table.sortable thead th button.sort").forEach(function (button) {
    button.addEventListener("click", function () { sortTable(button.closest("th")); });
  });

  // --- the variant filter: a row (or cell view) stays only when every variant it names is checked ---
  var filter = document.getElementById("filter");
  var status = document.getElementById("filter-status");

  function applyFilter() {
    var shown = {};
    var boxes = filter.querySelectorAll("input[name=variant]");
    var count = 0;
    boxes.forEach(function (box) { shown[box.value] = box.checked; if (box.checked) { count += 1; } });
    document.querySelectorAll("[data-variants]").forEach(function (el) {
      var names = el.getAttribute("data-variants").split(" ").filter(Boolean);
      el.hidden = !names.every(function (name) { return shown[name] !== false; });
    });
    status.textContent = "Showing " + count + " of " + boxes.length + " variants.";
  }

  if (filter) {
    filter.hidden = false;
    filter.addEventListener("change", applyFilter);
    filter.addEventListener("submit", function (event) { event.preventDefault(); });
    filter.querySelectorAll("button[data-all]").forEach(function (button) {
      button.addEventListener("click", function () {
        filter.querySelectorAll("input[name=variant]").forEach(function (box) {
          box.checked = button.getAttribute("data-all") === "1";
        });
        applyFilter();
      });
    });
    applyFilter();
  }

  // --- tabs (WAI-ARIA tabs pattern: arrow keys, Home and End move between tabs) ---
  var tablist = document.getElementById("tabs");
  var tabs = tablist ? Array.prototype.slice.call(tablist.querySelectorAll("[role=tab]")) : [];

  function select(tab, focus) {
    tabs.forEach(function (other) {
      var on = other === tab;
      other.setAttribute("aria-selected", on ? "true" : "false");
      other.tabIndex = on ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !on;
    });
    if (focus) { tab.focus(); }
  }

  if (tabs.length) {
    tablist.hidden = false;
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (event) {
        var next = {ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1}[event.key];
        if (next === undefined) { return; }
        event.preventDefault();
        select(tabs[(next + tabs.length) % tabs.length], true);
      });
    });
    select(tabs[0], false);
  }

  // --- opening a cell: its tab is selected, its details opened and focused ---
  function openCell(id) {
    var target = id && document.getElementById(id);
    if (!target || target.tagName !== "DETAILS") { return false; }
    var panel = target.closest("[role=tabpanel]");
    var tab = panel && document.getElementById(panel.getAttribute("aria-labelledby"));
    if (tab) { select(tab, false); }
    target.hidden = false;
    target.open = true;
    target.scrollIntoView({block: "start"});
    target.querySelector("summary").focus();
    return true;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.cell-link");
    if (link && openCell(link.getAttribute("href").slice(1))) { event.preventDefault(); }
  });
  window.addEventListener("hashchange", function () { openCell(location.hash.slice(1)); });
  if (location.hash) { openCell(location.hash.slice(1)); }
}());
