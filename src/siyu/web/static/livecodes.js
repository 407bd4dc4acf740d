// The daily chart of a live code's detail page (ECharts): scans, new and returning adds, deletions.
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("livecode-chart");
    var source = document.getElementById("livecode-data");
    var names = document.getElementById("livecode-labels");
    if (!holder || !source || !names || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var label = JSON.parse(names.textContent);
    var chart = window.echarts.init(holder, null, { renderer: "svg" });
    var series = ["scans", "new_adds", "returning_adds", "deletions"].map(function (key) {
      return { name: label[key], type: key === "scans" ? "line" : "bar", data: data[key] };
    });
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 16, top: 32, bottom: 28 },
      xAxis: { type: "category", data: data.days },
      yAxis: { type: "value", minInterval: 1 },
      series: series
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
