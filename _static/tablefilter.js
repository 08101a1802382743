// Sortable, filterable tables without a network or a framework: every <table class="filterable">
// gets a filter box (rows whose text does not contain every typed word are hidden) and headers that
// sort on click (numbers as numbers, the rest as text; a second click reverses). The Findings
// chapter uses it; tests/test_book_browser.py checks it works on the built page.
(function () {
  "use strict";
  function cellValue(row, i) {
    var cell = row.cells[i];
    var text = cell ? cell.textContent.trim() : "";
    var num = parseFloat(text.replace(/[,\u2212]/g, function (c) { return c === "," ? "" : "-"; }));
    return { text: text.toLowerCase(), num: isNaN(num) ? null : num };
  }
  function sortBy(table, i, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    rows.sort(function (a, b) {
      var x = cellValue(a, i), y = cellValue(b, i);
      if (x.num !== null && y.num !== null) { return dir * (x.num - y.num); }
      return dir * x.text.localeCompare(y.text);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  }
  function filter(table, query, counter) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0, rows = table.tBodies[0].rows;
    Array.prototype.forEach.call(rows, function (r) {
      var text = r.textContent.toLowerCase();
      var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
      r.style.display = keep ? "" : "none";
      shown += keep ? 1 : 0;
    });
    counter.textContent = shown + " of " + rows.length + " rows";
  }
  function enhance(table) {
    if (!table.tHead || !table.tBodies.length || table.dataset.enhanced) { return; }
    table.dataset.enhanced = "1";
    var box = document.createElement("div");
    box.className = "tablefilter";
    var input = document.createElement("input");
    input.type = "search";
    input.placeholder = "filter rows (e.g. routing inconclusive)";
    input.setAttribute("aria-label", "filter the table's rows");
    var counter = document.createElement("span");
    counter.className = "tablefilter-count";
    box.appendChild(input);
    box.appendChild(counter);
    table.parentNode.insertBefore(box, table);
    input.addEventListener("input", function () { filter(table, input.value, counter); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.title = "sort by this column";
      th.style.cursor = "pointer";
      th.addEventListener("click", function () { sortBy(table, i, th); });
    });
    filter(table, "", counter);
  }
  function init() { Array.prototype.forEach.call(document.querySelectorAll("table.filterable"), enhance); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
