// geoproc offline viewer: a small hand-written XYZ tile viewer (no library, no network).
// Why hand-written: the page must open from disk or a bucket without internet, and a
// 200-line viewer needs no vendored map library. Errors are written into the page title and
// #status so headless tests can read them with --dump-dom.
(function () {
  "use strict";
  var TILE = 256;
  var status = document.getElementById("status");
  var errors = [];
  function fail(message) {
    errors.push(String(message));
    status.setAttribute("data-errors", String(errors.length));
    status.textContent = errors.join("\n");
    document.title = "ERROR: " + errors[0];
  }
  window.addEventListener("error", function (e) { fail(e.message || "script error"); });

  var manifest = JSON.parse(document.getElementById("manifest").textContent);
  var mapEl = document.getElementById("map");
  var tilesEl = document.getElementById("tiles");
  var aoiEl = document.getElementById("aoi");
  var layerSel = document.getElementById("layer");
  var dateSel = document.getElementById("date");
  var legendEl = document.getElementById("legend");
  var zoomLabel = document.getElementById("zoom-level");
  document.getElementById("run-title").textContent = "geoproc run " + manifest.run_id;

  // Web-mercator pixel coordinates at zoom z (OGC WebMercatorQuad, 256 px tiles).
  function project(lon, lat, z) {
    var size = TILE * Math.pow(2, z);
    var s = Math.sin(lat * Math.PI / 180);
    s = Math.min(Math.max(s, -0.9999), 0.9999);
    return [(lon + 180) / 360 * size, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * size];
  }

  var params = new URLSearchParams(location.hash.replace(/^#/, ""));
  var state = { layer: 0, date: null, zoom: manifest.minzoom, cx: 0, cy: 0 };
  manifest.layers.forEach(function (layer, i) {
    var opt = document.createElement("option");
    opt.value = String(i);
    opt.textContent = layer.title;
    layerSel.appendChild(opt);
    if (params.get("layer") === layer.id) { state.layer = i; }
  });

  function currentLayer() { return manifest.layers[state.layer]; }

  function fillDates() {
    var layer = currentLayer();
    var wanted = params.get("date") || state.date;
    dateSel.innerHTML = "";
    layer.dates.forEach(function (d) {
      var opt = document.createElement("option");
      opt.value = d;
      opt.textContent = d;
      dateSel.appendChild(opt);
    });
    state.date = layer.dates.indexOf(wanted) >= 0 ? wanted : layer.dates[layer.dates.length - 1];
    dateSel.value = state.date;
  }

  function drawLegend() {
    var legend = currentLayer().legend;
    var html = '<div class="title">' + escapeHtml(legend.title) +
      (legend.units ? " (" + escapeHtml(legend.units) + ")" : "") + "</div>";
    if (legend.type === "classes") {
      legend.classes.forEach(function (c) {
        html += '<div class="row"><span class="swatch" style="background:' + c.color +
          '"></span>' + escapeHtml(c.label) + "</div>";
      });
    } else {
      html += '<div class="ramp" style="background:linear-gradient(to right,' +
        legend.colors.join(",") + ')"></div><div class="ticks"><span>' + legend.min +
        "</span><span>" + ((legend.min + legend.max) / 2) + "</span><span>" + legend.max +
        "</span></div>";
    }
    html += '<div class="row">transparent: no data</div>';
    legendEl.innerHTML = html;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }

  function fit() {
    var b = manifest.bounds;
    var w = mapEl.clientWidth, h = mapEl.clientHeight;
    var zoom = manifest.minzoom;
    for (var z = manifest.maxzoom; z >= manifest.minzoom; z--) {
      var a = project(b[0], b[3], z), c = project(b[2], b[1], z);
      if (c[0] - a[0] <= w && c[1] - a[1] <= h) { zoom = z; break; }
    }
    if (params.get("zoom")) { zoom = clampZoom(parseInt(params.get("zoom"), 10)); }
    var p0 = project(b[0], b[3], zoom), p1 = project(b[2], b[1], zoom);
    state.zoom = zoom;
    state.cx = (p0[0] + p1[0]) / 2;
    state.cy = (p0[1] + p1[1]) / 2;
  }

  function clampZoom(z) { return Math.max(manifest.minzoom, Math.min(manifest.maxzoom, z)); }

  var pending = 0;
  function render() {
    var layer = currentLayer();
    var available = (layer.tiles[state.date] || []);
    var have = {};
    available.forEach(function (k) { have[k] = true; });
    var w = mapEl.clientWidth, h = mapEl.clientHeight;
    var left = state.cx - w / 2, top = state.cy - h / 2;
    var z = state.zoom;
    tilesEl.innerHTML = "";
    pending = 0;
    var x0 = Math.floor(left / TILE), x1 = Math.floor((left + w) / TILE);
    var y0 = Math.floor(top / TILE), y1 = Math.floor((top + h) / TILE);
    for (var x = x0; x <= x1; x++) {
      for (var y = y0; y <= y1; y++) {
        var key = z + "/" + x + "/" + y;
        if (!have[key]) { continue; }  // only tiles the publisher wrote: no 404s
        var img = document.createElement("img");
        img.alt = "";
        img.style.left = Math.round(x * TILE - left) + "px";
        img.style.top = Math.round(y * TILE - top) + "px";
        img.onerror = (function (src) { return function () { fail("tile failed to load: " + src); }; })(key);
        img.onload = function () { pending -= 1; if (pending === 0 && errors.length === 0) { document.title = "geoproc viewer: ready"; } };
        pending += 1;
        img.src = layer.url.replace("{date}", state.date).replace("{z}", z).replace("{x}", x).replace("{y}", y);
        tilesEl.appendChild(img);
      }
    }
    var b = manifest.bounds;
    var a = project(b[0], b[3], z), c = project(b[2], b[1], z);
    aoiEl.style.left = Math.round(a[0] - left) + "px";
    aoiEl.style.top = Math.round(a[1] - top) + "px";
    aoiEl.style.width = Math.round(c[0] - a[0]) + "px";
    aoiEl.style.height = Math.round(c[1] - a[1]) + "px";
    zoomLabel.textContent = " zoom " + z;
    if (pending === 0 && errors.length === 0) { document.title = "geoproc viewer: ready"; }
  }

  function zoomBy(delta, px, py) {
    var z = clampZoom(state.zoom + delta);
    if (z === state.zoom) { return; }
    var w = mapEl.clientWidth, h = mapEl.clientHeight;
    px = px === undefined ? w / 2 : px;
    py = py === undefined ? h / 2 : py;
    var f = Math.pow(2, z - state.zoom);
    var gx = state.cx - w / 2 + px, gy = state.cy - h / 2 + py;
    state.cx = gx * f - px + w / 2;
    state.cy = gy * f - py + h / 2;
    state.zoom = z;
    render();
  }

  layerSel.addEventListener("change", function () {
    state.layer = parseInt(layerSel.value, 10);
    fillDates();
    drawLegend();
    render();
  });
  dateSel.addEventListener("change", function () { state.date = dateSel.value; render(); });
  document.getElementById("zoom-in").addEventListener("click", function () { zoomBy(1); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoomBy(-1); });
  mapEl.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = mapEl.getBoundingClientRect();
    zoomBy(e.deltaY < 0 ? 1 : -1, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  var drag = null;
  mapEl.addEventListener("mousedown", function (e) { drag = [e.clientX, e.clientY]; mapEl.classList.add("dragging"); });
  window.addEventListener("mouseup", function () { drag = null; mapEl.classList.remove("dragging"); });
  window.addEventListener("mousemove", function (e) {
    if (!drag) { return; }
    state.cx -= e.clientX - drag[0];
    state.cy -= e.clientY - drag[1];
    drag = [e.clientX, e.clientY];
    render();
  });
  window.addEventListener("resize", render);

  if (!manifest.layers.length) { fail("this run published no layers"); return; }
  layerSel.value = String(state.layer);
  fillDates();
  drawLegend();
  fit();
  render();
})();
