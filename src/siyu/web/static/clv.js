// The CLV page's charts (ECharts): customers by predicted value and by P(alive), and the
// calibration check (actual against predicted holdout purchases per calibration frequency).
(function () {
  "use strict";

  function bar(holder, labels, values, color) {
    var chart = window.echarts.init(holder, null, { renderer: "svg" });
    chart.setOption({
      animation: false, color: [color], tooltip: { trigger: "axis" },
      grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: labels }, yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "bar", data: values }]
    });
    return chart;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var source = document.getElementById("clv-data");
    if (!source || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var charts = [];
    var values = document.getElementById("clv-value-chart");
    if (values) { charts.push(bar(values, data.values.labels, data.values.customers, "#2f6fde")); }
    var alive = document.getElementById("clv-alive-chart");
    if (alive) { charts.push(bar(alive, data.alive.labels, data.alive.customers, "#23a57a")); }
    var calibration = document.getElementById("clv-calibration-chart");
    if (calibration && data.calibration) {
      var heads = document.querySelectorAll("#clv-calibration-table th");
      var chart = window.echarts.init(calibration, null, { renderer: "svg" });
      chart.setOption({
        animation: false, color: ["#2f6fde", "#e0565b"], tooltip: { trigger: "axis" }, legend: { bottom: 0 },
        grid: { left: 8, right: 16, top: 16, bottom: 40, containLabel: true },
        xAxis: { type: "category", name: heads[0].textContent, nameLocation: "middle", nameGap: 24, data: data.calibration.labels },
        yAxis: { type: "value" },
        series: [
          { name: heads[2].textContent, type: "line", data: data.calibration.actual },
          { name: heads[3].textContent, type: "line", lineStyle: { type: "dashed" }, data: data.calibration.predicted }
        ]
      });
      charts.push(chart);
    }
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  });
})();
