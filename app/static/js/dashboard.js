// 数据看板: draws each [data-chart] element with the ECharts served from /static/vendor.
// The chart's data comes in its data-chart attribute (JSON, made by app/dashboards/views.py):
//   {kind: "bar" | "stack" | "hbar" | "funnel", categories: [...], unit: "%",
//    series: [{name, data: [...], links: [url | null], counts: [...], stacked: bool}],
//    drill: [url | null] (per category), counts: bool (the values are counts)}
// Clicking a bar (or a funnel step) opens the list of the rows behind it; a bar that stands for
// a node above the rows (a street on a district's chart) opens the dashboard at that node.
(function () {
  "use strict";

  var PALETTE = ["#c23531", "#d48265", "#2f4554", "#61a0a8", "#91c7ae", "#749f83",
                 "#ca8622", "#bda29a", "#6e7074", "#546570"];

  // A tooltip is HTML: names come from user data (a community, a unit), so they are escaped.
  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function tooltipFormatter(spec) {
    return function (params) {
      var rows = Array.isArray(params) ? params : [params];
      var lines = [escapeHtml(rows[0].name)];
      rows.forEach(function (p) {
        var value = p.value === null || p.value === undefined ? "—" : p.value + (spec.unit || "");
        lines.push(p.marker + escapeHtml(p.seriesName) + "：" + escapeHtml(value));
      });
      if (spec.drill && spec.drill[rows[0].dataIndex]) { lines.push(escapeHtml(spec.drill_hint)); }
      return lines.join("<br>");
    };
  }

  function funnelOption(spec) {
    var series = spec.series[0];
    return {
      color: PALETTE,
      tooltip: { trigger: "item", formatter: function (p) { return escapeHtml(p.name + "：" + p.value); } },
      series: [{
        name: series.name, type: "funnel", sort: "none", left: "10%", width: "80%",
        label: { show: true, position: "inside", formatter: "{b}  {c}" },
        data: spec.categories.map(function (name, i) {
          return { name: name, value: series.data[i] };
        })
      }]
    };
  }

  function barOption(spec) {
    var horizontal = spec.kind === "hbar";
    var categoryAxis = {
      type: "category", data: spec.categories, inverse: horizontal,
      // Up to 20 bars (app/dashboards/levels.py): their names slant more as they crowd.
      axisLabel: { interval: 0, rotate: horizontal ? 0 : spec.categories.length > 10 ? 45
        : spec.categories.length > 4 ? 30 : 0 }
    };
    var valueAxis = { type: "value", axisLabel: { formatter: "{value}" + (spec.unit === "%" ? "%" : "") } };
    // Counts on whole numbers only (no 1.5 needs).
    if (spec.counts) { valueAxis.minInterval = 1; }
    return {
      color: PALETTE,
      legend: { show: spec.series.length > 1, top: 0, type: "scroll" },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, formatter: tooltipFormatter(spec) },
      grid: { left: horizontal ? 110 : 50, right: 20, top: spec.series.length > 1 ? 30 : 15,
              bottom: 10, containLabel: !horizontal },
      xAxis: horizontal ? valueAxis : categoryAxis,
      yAxis: horizontal ? categoryAxis : valueAxis,
      series: spec.series.map(function (s) {
        return {
          name: s.name, type: "bar", data: s.data, barMaxWidth: 36,
          stack: spec.kind === "stack" && s.stacked !== false ? "total" : undefined,
          label: { show: spec.kind === "hbar", position: "right" }
        };
      })
    };
  }

  function draw(el) {
    var spec = JSON.parse(el.getAttribute("data-chart"));
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.on("finished", function () { el.setAttribute("data-drawn", "1"); });
    chart.setOption(spec.kind === "funnel" ? funnelOption(spec) : barOption(spec));
    chart.on("click", function (params) {
      var series = spec.series[spec.kind === "funnel" ? 0 : params.seriesIndex];
      var link = (spec.drill && spec.drill[params.dataIndex]) ||
        (series && series.links[params.dataIndex]);
      if (link) { window.location.href = link; }
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function drawAll() {
    if (typeof echarts === "undefined") { return; }
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
}());
