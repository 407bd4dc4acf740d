// A broadcast's progress (ECharts bar and the counts table), polled from its JSON endpoint while it
// is scheduled, sending or paused; the page reloads once when the status changes (new buttons).
(function () {
  "use strict";
  var STEP_MS = 2000;
  function start() {
    var card = document.getElementById("progress");
    var names = document.getElementById("progress-labels");
    if (!card || !names) { return; }
    var label = JSON.parse(names.textContent);
    var keys = Object.keys(label);
    var chart = null;
    var holder = document.getElementById("progress-chart");
    if (holder && typeof window.echarts !== "undefined") {
      chart = window.echarts.init(holder, null, { renderer: "svg" });
      window.addEventListener("resize", function () { chart.resize(); });
    }
    var shownStatus = null;
    function draw(data) {
      keys.forEach(function (key) {
        var cell = card.querySelector('[data-count="' + key + '"]');
        if (cell) { cell.textContent = String(data.counts[key] || 0); }
      });
      var size = document.getElementById("audience-size");
      if (size) { size.textContent = String(data.audience); }
      if (chart) {
        var shown = keys.filter(function (key) { return data.counts[key]; });
        chart.setOption({
          tooltip: { trigger: "axis" },
          grid: { left: 150, right: 24, top: 8, bottom: 24 },
          xAxis: { type: "value", minInterval: 1 },
          yAxis: { type: "category", data: shown.map(function (k) { return label[k]; }) },
          series: [{ type: "bar", data: shown.map(function (k) { return data.counts[k]; }) }]
        }, true);
      }
      if (shownStatus === null) { shownStatus = data.status; }
      else if (data.status !== shownStatus) { window.location.reload(); }
    }
    function poll() {
      fetch(card.getAttribute("data-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (data) { draw(data); }
          if (!data || card.getAttribute("data-live") === "1") { window.setTimeout(poll, STEP_MS); }
        })
        .catch(function () { window.setTimeout(poll, STEP_MS * 2); });
    }
    poll();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
