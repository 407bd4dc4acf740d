// The daily charts of the community pages (ECharts): on a group page joins and leaves per day (bars) and
// the members at the end of each day (line); on the list page messages per day (bars) and the shares of
// active groups and members (lines, %).
(function () {
  "use strict";
  function drawActivity() {
    var holder = document.getElementById("activity-chart");
    var source = document.getElementById("activity-data");
    var names = document.getElementById("activity-labels");
    if (!holder || !source || !names || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var label = JSON.parse(names.textContent);
    var chart = window.echarts.init(holder, null, { renderer: "svg" });
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 48, right: 48, top: 32, bottom: 28 },
      xAxis: { type: "category", data: data.days },
      yAxis: [
        { type: "value", minInterval: 1 },
        { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } }
      ],
      series: [
        { name: label.messages, type: "bar", data: data.messages },
        { name: label.group_share, type: "line", yAxisIndex: 1, connectNulls: false, data: data.group_share },
        { name: label.member_share, type: "line", yAxisIndex: 1, connectNulls: false, data: data.member_share }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function draw() {
    drawActivity();
    var holder = document.getElementById("community-chart");
    var source = document.getElementById("community-data");
    var names = document.getElementById("community-labels");
    if (!holder || !source || !names || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var label = JSON.parse(names.textContent);
    var chart = window.echarts.init(holder, null, { renderer: "svg" });
    var series = [
      { name: label.joins, type: "bar", stack: "moves", data: data.joins },
      { name: label.leaves, type: "bar", stack: "moves", data: data.leaves },
      { name: label.members, type: "line", yAxisIndex: 1, data: data.members }
    ];
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 40, top: 32, bottom: 28 },
      xAxis: { type: "category", data: data.days },
      yAxis: [{ type: "value", minInterval: 1 }, { type: "value", minInterval: 1 }],
      series: series
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
