// The metric trend lines and the retention cohort heat maps; data from JSON blocks in the page.
(function () {
  "use strict";
  function json(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function start() {
    if (typeof window.echarts === "undefined") { return; }
    var charts = [];
    var trend = json("trend-data");
    var names = json("trend-names") || {};
    var trendNode = document.getElementById("trend-chart");
    if (trend && trendNode) {
      var c = window.echarts.init(trendNode, null, { renderer: "svg" });
      c.setOption({
        animation: false, tooltip: { trigger: "axis", valueFormatter: function (v) { return v == null ? "—" : v + "%"; } },
        legend: { bottom: 0 }, grid: { left: 8, right: 16, top: 16, bottom: 40, containLabel: true },
        xAxis: { type: "category", data: trend.periods }, yAxis: { type: "value", axisLabel: { formatter: "{value}%" } },
        series: Object.keys(trend.series).map(function (key) {
          return { name: names[key] || key, type: "line", connectNulls: false, data: trend.series[key] };
        })
      });
      charts.push(c);
    }
    var cohorts = json("cohort-data");
    var dayLabels = json("cohort-labels") || [];
    if (cohorts) {
      Array.prototype.forEach.call(document.querySelectorAll(".cohort-heatmap"), function (node) {
        var cells = cohorts[node.getAttribute("data-kind")];
        var h = window.echarts.init(node, null, { renderer: "svg" });
        h.setOption({
          animation: false, tooltip: { valueFormatter: function (v) { return v + "%"; } },
          grid: { left: 8, right: 16, top: 16, bottom: 56, containLabel: true },
          xAxis: { type: "category", data: dayLabels },
          yAxis: { type: "category", data: cohorts.cohorts, inverse: true },
          visualMap: { min: 0, max: 100, calculable: true, orient: "horizontal", left: "center", bottom: 0, inRange: { color: ["#eef4ff", "#2f6fde"] } },
          series: [{ type: "heatmap", data: cells, label: { show: true, formatter: function (p) { return p.value[2] + "%"; } } }]
        });
        charts.push(h);
      });
    }
    window.addEventListener("resize", function () { charts.forEach(function (x) { x.resize(); }); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
