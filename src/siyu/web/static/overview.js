// The overview's dashboard charts: metric trend lines, GMV share, channel ROI, the retention cohort heat
// map, RFM layers and lifecycle stages; data from JSON blocks in the page (the revenue chart is in siyu.js).
(function () {
  "use strict";
  function json(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function chart(id, option) {
    var node = document.getElementById(id);
    if (!node) { return null; }
    var c = window.echarts.init(node, null, { renderer: "svg" });
    option.animation = false;
    c.setOption(option);
    return c;
  }
  function start() {
    var data = json("overview-data");
    if (!data || typeof window.echarts === "undefined") { return; }
    var names = json("overview-names") || {};
    var money = function (v) { return "¥" + Number(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }); };
    var percent = function (v) { return v == null ? "—" : v + "%"; };
    var charts = [];
    Array.prototype.forEach.call(document.querySelectorAll(".spark"), function (node) {
      var key = node.getAttribute("data-key");
      charts.push(chart(node.id, {
        tooltip: { trigger: "axis", valueFormatter: percent },
        grid: { left: 2, right: 2, top: 4, bottom: 4 },
        xAxis: { type: "category", data: data.trend.months, show: false },
        yAxis: { type: "value", show: false, min: "dataMin", max: "dataMax" },
        series: [{ name: names[key] || key, type: "line", symbol: "none", connectNulls: false, lineStyle: { width: 2 }, data: data.trend.series[key] }]
      }));
    });
    charts.push(chart("gmv-chart", {
      color: ["#2f6fde", "#c9d3e3"], tooltip: { trigger: "item", valueFormatter: money }, legend: { bottom: 0 },
      series: [{ type: "pie", radius: ["45%", "70%"], label: { formatter: "{d}%" },
        data: [{ name: names.private, value: data.gmv.private }, { name: names.others, value: data.gmv.others }] }]
    }));
    charts.push(chart("roi-chart", {
      color: ["#2f6fde", "#e0565b"], tooltip: { trigger: "axis", valueFormatter: money }, legend: { bottom: 0 },
      grid: { left: 8, right: 16, top: 16, bottom: 40, containLabel: true },
      xAxis: { type: "category", data: data.roi.channels }, yAxis: { type: "value" },
      series: [{ name: names.revenue, type: "bar", data: data.roi.revenue }, { name: names.cost, type: "bar", data: data.roi.cost }]
    }));
    charts.push(chart("cohort-chart", {
      tooltip: { valueFormatter: percent },
      grid: { left: 8, right: 16, top: 16, bottom: 56, containLabel: true },
      xAxis: { type: "category", data: json("overview-cohort-labels") || data.cohorts.days },
      yAxis: { type: "category", data: data.cohorts.cohorts, inverse: true },
      visualMap: { min: 0, max: 100, calculable: true, orient: "horizontal", left: "center", bottom: 0, inRange: { color: ["#eef4ff", "#2f6fde"] } },
      series: [{ type: "heatmap", data: data.cohorts.cells, label: { show: true, formatter: function (p) { return p.value[2] + "%"; } } }]
    }));
    charts.push(chart("rfm-chart", {
      color: ["#23a57a"], tooltip: { trigger: "axis" },
      grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.rfm.layers, axisLabel: { interval: 0, rotate: 30 } }, yAxis: { type: "value" },
      series: [{ name: names.customers, type: "bar", data: data.rfm.customers }]
    }));
    charts.push(chart("stage-chart", {
      color: ["#8a63d2"], tooltip: { trigger: "axis" },
      grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: names.stages || data.stages.stages, axisLabel: { interval: 0 } }, yAxis: { type: "value" },
      series: [{ name: names.customers, type: "bar", data: data.stages.counts }]
    }));
    charts = charts.filter(function (c) { return c; });
    window.addEventListener("resize", function () { charts.forEach(function (x) { x.resize(); }); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
