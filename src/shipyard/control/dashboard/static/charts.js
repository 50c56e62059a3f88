// The charts page: uPlot charts from the page's JSON data block, deployments drawn as vertical markers.
(function () {
  "use strict";
  var d = JSON.parse(document.getElementById("chart-data").textContent);
  if (!d.x.length || typeof uPlot === "undefined") return;
  var colors = ["#2e86de", "#e67e22", "#27ae60", "#8e44ad"];
  var dashes = { p50: [], p95: [6, 3], p99: [2, 3] };
  var width = Math.min(1100, document.body.clientWidth - 20);

  function markers() {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
          ctx.save();
          ctx.font = Math.round(10 * devicePixelRatio) + "px sans-serif";
          d.marks.forEach(function (m, i) {
            var x = Math.round(u.valToPos(m.t, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.strokeStyle = m.outcome === "succeeded" ? "#27ae60" : "#c0392b";
            ctx.setLineDash([4, 4]);
            ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + h); ctx.stroke();
            ctx.fillStyle = ctx.strokeStyle;
            // A label ends at its line (the newest deploys sit at the right edge, where the span ends), or
            // starts there when it would run past the left edge; staggered: deploys close together. Set
            // here, not left to whatever alignment uPlot's axes last used.
            var left = x - 3 - ctx.measureText(m.label).width < u.bbox.left;
            ctx.textAlign = left ? "left" : "right";
            ctx.textBaseline = "alphabetic";
            ctx.fillText(m.label, left ? x + 3 : x - 3, top + (12 + 12 * (i % 4)) * devicePixelRatio);
          });
          ctx.restore();
        }]
      }
    };
  }

  function chart(id, series, columns) {
    var el = document.getElementById(id);
    var opts = { title: el.getAttribute("data-title"), width: width, height: 220, plugins: [markers()],
                 series: [{}].concat(series), axes: [{}, { size: 60 }], scales: { x: { time: true, range: [d.since, d.until] } } };
    var u = new uPlot(opts, [d.x].concat(columns), el);
    el.setAttribute("data-series", String(series.length));
    return u;
  }

  var rpsSeries = [{ label: "total", stroke: "#555", width: 2 }], rpsCols = [d.total.rps];
  var errSeries = [{ label: "total", stroke: "#555", width: 2 }], errCols = [d.total.error_rate];
  var latSeries = [], latCols = [];
  d.releases.forEach(function (r, i) {
    var c = colors[i % colors.length];
    rpsSeries.push({ label: r.release, stroke: c }); rpsCols.push(r.rps);
    errSeries.push({ label: r.release, stroke: c }); errCols.push(r.error_rate);
    ["p50", "p95", "p99"].forEach(function (q) {
      latSeries.push({ label: r.release + " " + q.toUpperCase(), stroke: c, dash: dashes[q] });
      latCols.push(r[q]);
    });
  });
  chart("chart-rps", rpsSeries, rpsCols);
  chart("chart-errors", errSeries, errCols);
  chart("chart-latency", latSeries, latCols);
  document.body.setAttribute("data-charts", "drawn");
})();
