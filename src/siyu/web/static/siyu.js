// siyu pages: auto-submitting selects, the overview chart (ECharts), and import progress polling.
(function () {
  "use strict";

  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  function revenueChart() {
    var holder = document.getElementById("revenue-chart");
    var source = document.getElementById("revenue-data");
    if (!holder || !source || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var chart = window.echarts.init(holder, null, { renderer: "svg" });
    var money = function (v) { return "¥" + Number(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }); };
    chart.setOption({
      animation: false,
      color: ["#2f6fde", "#23a57a", "#f0a30a", "#e0565b", "#8a63d2", "#19a5b8", "#6b7a8f", "#c2843f", "#5c9e31", "#d45fa0"],
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: money },
      legend: { type: "scroll", bottom: 0 },
      grid: { left: 8, right: 16, top: 16, bottom: 40, containLabel: true },
      xAxis: { type: "category", data: data.months },
      yAxis: { type: "value", axisLabel: { formatter: function (v) { return "¥" + v.toLocaleString(); } } },
      series: data.series.map(function (s) {
        return { name: s.name, type: "bar", stack: "revenue", emphasis: { focus: "series" }, data: s.data };
      })
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function metricsCharts() {
    var source = document.getElementById("metrics-data");
    if (!source || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var charts = [];
    var money = function (v) { return "¥" + Number(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }); };
    var roi = document.getElementById("roi-chart");
    if (roi) {
      var c1 = window.echarts.init(roi, null, { renderer: "svg" });
      c1.setOption({
        animation: false, color: ["#2f6fde", "#e0565b"],
        tooltip: { trigger: "axis", valueFormatter: money }, legend: { bottom: 0 },
        grid: { left: 8, right: 16, top: 16, bottom: 40, containLabel: true },
        xAxis: { type: "category", data: data.roi.channels }, yAxis: { type: "value" },
        series: [
          { name: roi.closest("section").querySelector("th:nth-child(2)").textContent, type: "bar", data: data.roi.revenue },
          { name: roi.closest("section").querySelector("th:nth-child(3)").textContent, type: "bar", data: data.roi.cost }
        ]
      });
      charts.push(c1);
    }
    var intervals = document.getElementById("interval-chart");
    if (intervals) {
      var c2 = window.echarts.init(intervals, null, { renderer: "svg" });
      c2.setOption({
        animation: false, color: ["#23a57a"], tooltip: { trigger: "axis" },
        grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: data.intervals.labels }, yAxis: { type: "value", minInterval: 1 },
        series: [{ type: "bar", data: data.intervals.counts }]
      });
      charts.push(c2);
    }
    var cohorts = document.getElementById("cohort-chart");
    if (cohorts) {
      var values = data.cohorts.cells.map(function (cell) { return cell[2]; });
      var c3 = window.echarts.init(cohorts, null, { renderer: "svg" });
      c3.setOption({
        animation: false, tooltip: { valueFormatter: money },
        grid: { left: 8, right: 16, top: 16, bottom: 56, containLabel: true },
        xAxis: { type: "category", data: data.cohorts.offsets.map(function (m) { return "M" + m; }) },
        yAxis: { type: "category", data: data.cohorts.cohorts },
        visualMap: { min: 0, max: Math.max.apply(null, values.concat([1])), calculable: true, orient: "horizontal", left: "center", bottom: 0, inRange: { color: ["#eef4ff", "#2f6fde"] } },
        series: [{ type: "heatmap", data: data.cohorts.cells, label: { show: true, formatter: function (p) { return "¥" + Math.round(p.value[2]); } } }]
      });
      charts.push(c3);
    }
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }

  function rfmCharts() {
    var source = document.getElementById("rfm-data");
    if (!source || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var layers = document.getElementById("rfm-chart");
    if (layers) {
      var c1 = window.echarts.init(layers, null, { renderer: "svg" });
      c1.setOption({
        animation: false, color: ["#2f6fde"], tooltip: { trigger: "axis" },
        grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: data.layers }, yAxis: { type: "value", minInterval: 1 },
        series: [{ type: "bar", data: data.customers }]
      });
      window.addEventListener("resize", function () { c1.resize(); });
    }
    var stages = document.getElementById("stage-chart");
    if (stages) {
      var names = Array.prototype.map.call(document.querySelectorAll("#stage-table th"), function (th) { return th.textContent; });
      var c2 = window.echarts.init(stages, null, { renderer: "svg" });
      c2.setOption({
        animation: false, color: ["#23a57a"], tooltip: { trigger: "axis" },
        grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: names }, yAxis: { type: "value", minInterval: 1 },
        series: [{ type: "bar", data: data.stage_counts }]
      });
      window.addEventListener("resize", function () { c2.resize(); });
    }
  }

  function segmentChart() {
    var source = document.getElementById("segment-data");
    var box = document.getElementById("segment-chart");
    if (!source || !box || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var chart = window.echarts.init(box, null, { renderer: "svg" });
    chart.setOption({
      animation: false, color: ["#2f6fde"], tooltip: { trigger: "axis" },
      grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.days }, yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "line", step: "end", areaStyle: { opacity: 0.12 }, showSymbol: false, data: data.members }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function importProgress() {
    var box = document.getElementById("import-progress");
    if (!box) { return; }
    var bar = document.getElementById("progress-bar");
    var link = document.getElementById("result-link");
    var errorBox = document.getElementById("progress-error");
    function poll() {
      fetch(box.dataset.progressUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (state) {
          if (state.total) { bar.max = state.total; }
          bar.value = state.processed || 0;
          box.querySelector("[data-processed]").textContent = state.processed || 0;
          box.querySelector("[data-total]").textContent = state.total || "?";
          if (state.result_url) { link.href = state.result_url; link.hidden = false; }
          if (state.status === "running") { window.setTimeout(poll, 400); return; }
          if (state.result_url) { window.location.assign(state.result_url); return; }
          errorBox.textContent = box.dataset.failedLabel + ": " + (state.error || state.message || "");
          errorBox.hidden = false;
        })
        .catch(function () { window.setTimeout(poll, 1500); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    autosubmit();
    revenueChart();
    metricsCharts();
    rfmCharts();
    segmentChart();
    importProgress();
  });
})();
