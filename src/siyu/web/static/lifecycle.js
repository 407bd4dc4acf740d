// The lifecycle page: customers per stage (bars), the funnel lead → new → active → loyal, and the moves
// between stages as a Sankey whose left column is "before" and right column "after" (so moves both ways
// between two stages still make an acyclic graph, as a Sankey needs).
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("lifecycle-data");
    if (!source || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var labels = JSON.parse(document.getElementById("lifecycle-labels").textContent);
    var name = function (stage) { return labels[stage] || stage; };
    var charts = [];
    var stages = document.getElementById("lifecycle-stage-chart");
    if (stages) {
      var c1 = window.echarts.init(stages, null, { renderer: "svg" });
      c1.setOption({
        animation: false, color: ["#23a57a"], tooltip: { trigger: "axis" },
        grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: data.stages.map(name) }, yAxis: { type: "value", minInterval: 1 },
        series: [{ type: "bar", data: data.stage_counts }]
      });
      charts.push(c1);
    }
    var funnel = document.getElementById("lifecycle-funnel-chart");
    if (funnel) {
      var c2 = window.echarts.init(funnel, null, { renderer: "svg" });
      c2.setOption({
        animation: false, color: ["#2f6fde", "#19a5b8", "#23a57a", "#f0a30a"], tooltip: { trigger: "item" },
        series: [{
          type: "funnel", sort: "none", left: "10%", width: "80%", top: 8, bottom: 8, minSize: "8%",
          label: { show: true, position: "inside", formatter: function (p) { return p.name + " " + p.value.toLocaleString(); } },
          data: data.funnel.map(function (s) { return { name: name(s.stage), value: s.customers }; })
        }]
      });
      charts.push(c2);
    }
    var flows = document.getElementById("lifecycle-flow-chart");
    if (flows && data.flows.length) {
      var left = function (stage) { return name(stage) + " ·"; };  // "before" nodes
      var right = function (stage) { return "→ " + name(stage); };  // "after" nodes
      var nodes = {};
      var links = data.flows.map(function (f) {
        nodes[left(f.source)] = true; nodes[right(f.target)] = true;
        return { source: left(f.source), target: right(f.target), value: f.value };
      });
      var c3 = window.echarts.init(flows, null, { renderer: "svg" });
      c3.setOption({
        animation: false, tooltip: { trigger: "item" },
        series: [{
          type: "sankey", left: 8, right: 96, top: 8, bottom: 8, nodeAlign: "justify",
          emphasis: { focus: "adjacency" }, lineStyle: { color: "gradient", opacity: 0.4 },
          data: Object.keys(nodes).map(function (n) { return { name: n }; }), links: links
        }]
      });
      charts.push(c3);
    }
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
