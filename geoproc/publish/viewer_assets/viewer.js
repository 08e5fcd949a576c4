// geoproc offline viewer on Leaflet (vendored, see geoproc/publish/viewer.py): the published
// web-tile pyramids of each layer, a date slider, opacity, legend, scale bar, coordinates,
// click for the stored value and the pixel's time series, and the view in the URL hash.
// Errors are written into #status[data-errors] and the page title so tests can read them.
(function () {
  "use strict";
  var OVERZOOM = 3;            // zooms beyond the deepest published one (tiles scaled up)
  var EMPTY = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
  var PARALLEL_LOADS = 8;      // value payloads loaded at once for a time series

  var status = document.getElementById("status");
  var errors = [];
  function fail(message) {
    errors.push(String(message));
    status.setAttribute("data-errors", String(errors.length));
    status.textContent = errors.join("\n");
    document.title = "ERROR: " + errors[0];
  }
  window.addEventListener("error", function (e) { fail(e.message || "script error"); });
  window.addEventListener("unhandledrejection", function (e) { fail(e.reason && e.reason.message || e.reason); });
  function $(id) { return document.getElementById(id); }
  function escapeHtml(text) {
    return String(text).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }

  var manifest = JSON.parse($("manifest").textContent);
  $("run-title").textContent = "geoproc run " + manifest.run_id;
  if (!window.L) { fail("the map library did not load (vendor/leaflet/leaflet.js)"); return; }
  if (!manifest.layers.length) { fail("this run published no layers"); return; }

  // ---- state and URL hash -------------------------------------------------------------
  var params = new URLSearchParams(location.hash.replace(/^#/, ""));
  var state = { layer: 0, date: null, opacity: 1, pt: null };  // no basemap: opaque by default
  manifest.layers.forEach(function (layer, i) {
    var opt = document.createElement("option");
    opt.value = String(i);
    opt.textContent = layer.title;
    $("layer").appendChild(opt);
    if (params.get("layer") === layer.id) { state.layer = i; }
  });
  var opacityParam = parseFloat(params.get("opacity"));
  if (opacityParam >= 0 && opacityParam <= 1) { state.opacity = opacityParam; }
  function layer() { return manifest.layers[state.layer]; }

  var b = manifest.bounds;
  var aoi = L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
  var map = L.map("map", {
    minZoom: manifest.minzoom,
    maxZoom: manifest.maxzoom + OVERZOOM,
    zoomSnap: 1,
    fadeAnimation: false,  // a tile is shown in its colours as soon as it loads
  });
  map.attributionControl.addAttribution("geoproc run " + escapeHtml(manifest.run_id));
  L.control.scale({ imperial: false, maxWidth: 150 }).addTo(map);

  var lastHash = null;
  function writeHash() {
    var c = map.getCenter();
    var p = new URLSearchParams();
    p.set("layer", layer().id);
    p.set("date", state.date);
    p.set("z", String(map.getZoom()));
    p.set("lat", c.lat.toFixed(5));
    p.set("lon", c.lng.toFixed(5));
    p.set("opacity", String(state.opacity));
    if (state.pt) { p.set("pt", state.pt.lat.toFixed(6) + "," + state.pt.lng.toFixed(6)); }
    var hash = "#" + p.toString();
    $("permalink").setAttribute("href", hash);
    if (hash !== location.hash) {
      lastHash = hash;
      location.replace(hash);  // no history entry per pan; works on file:// too
    }
  }

  // ---- tiles ------------------------------------------------------------------------
  // Only tiles the publisher wrote are requested; the others get an empty image (no 404).
  var GeoTiles = L.TileLayer.extend({
    getTileUrl: function (coords) {
      var key = coords.z + "/" + coords.x + "/" + coords.y;
      if (!this.options.have[key]) { return EMPTY; }
      return this.options.template.replace("{z}", coords.z).replace("{x}", coords.x).replace("{y}", coords.y);
    },
  });
  var tiles = null;
  var loading = false;  // tiles of the view still loading
  function haveSet(la, date) {
    var have = {};
    (la.tiles[date] || []).forEach(function (k) { have[k] = true; });
    return have;
  }
  function drawTiles() {
    var la = layer();
    if (tiles) { map.removeLayer(tiles); }
    tiles = new GeoTiles("", {
      template: la.url.replace("{date}", state.date),
      have: haveSet(la, state.date),
      minNativeZoom: la.minzoom,
      maxNativeZoom: la.maxzoom,
      minZoom: manifest.minzoom,
      maxZoom: manifest.maxzoom + OVERZOOM,
      bounds: L.latLngBounds([la.bounds[1], la.bounds[0]], [la.bounds[3], la.bounds[2]]),
      opacity: state.opacity,
      keepBuffer: 1,
    });
    loading = false;  // the replaced layer's pending tiles no longer matter
    tiles.on("tileerror", function (e) { fail("tile failed to load: " + (e.tile && e.tile.src)); });
    tiles.on("loading", function () { loading = true; settle(); });
    tiles.on("load", function () { loading = false; settle(); });
    tiles.addTo(map);
    settle();
  }
  function settle() {
    var busy = loading || probing > 0;
    status.setAttribute("data-state", busy ? "loading" : "ready");
    if (!busy && errors.length === 0) { document.title = "geoproc viewer: ready"; }
  }

  // ---- controls: layer, date slider, opacity, legend ------------------------------------
  function setLayer(i, wantedDate) {
    state.layer = i;
    $("layer").value = String(i);
    var la = layer();
    var dates = la.dates;
    state.date = dates.indexOf(wantedDate) >= 0 ? wantedDate : la.open_date || dates[dates.length - 1];
    $("date").max = String(Math.max(0, dates.length - 1));
    $("date").value = String(dates.indexOf(state.date));
    drawLegend();
    showDate();
    drawTiles();
    if (state.pt) { probe(state.pt); }
  }
  function setDate(date) {
    if (date === state.date || layer().dates.indexOf(date) < 0) { return; }
    state.date = date;
    $("date").value = String(layer().dates.indexOf(date));
    showDate();
    drawTiles();
    if (state.pt) { probe(state.pt); }
    writeHash();
  }
  function showDate() {
    var dates = layer().dates;
    $("date-label").textContent = state.date || "no dates";
    $("date-count").textContent = "(" + (dates.indexOf(state.date) + 1) + " of " + dates.length +
      (state.date === layer().open_date && dates.length > 1 ? ", opening date" : "") + ")";
  }
  function drawLegend() {
    var legend = layer().legend;
    var html = '<div class="title">' + escapeHtml(legend.title) +
      (legend.units ? " (" + escapeHtml(legend.units) + ")" : "") + "</div>";
    if (legend.type === "classes") {
      legend.classes.forEach(function (c) {
        html += '<div><span class="swatch" style="background:' + c.color + '"></span>' +
          escapeHtml(c.label) + ' <span class="muted">(' + c.value + ")</span></div>";
      });
    } else {
      html += '<div class="ramp" style="background:linear-gradient(to right,' +
        legend.colors.join(",") + ')"></div><div class="ticks"><span>' + legend.min +
        "</span><span>" + (legend.min + legend.max) / 2 + "</span><span>" + legend.max +
        "</span></div>";
    }
    html += '<div class="muted">transparent: no data</div>';
    $("legend").innerHTML = html;
  }

  $("layer").addEventListener("change", function () {
    setLayer(parseInt($("layer").value, 10), state.date);
    writeHash();
  });
  $("date").addEventListener("input", function () { setDate(layer().dates[parseInt($("date").value, 10)]); });
  $("date-prev").addEventListener("click", function () { step(-1); });
  $("date-next").addEventListener("click", function () { step(1); });
  function step(delta) {
    var dates = layer().dates;
    var i = Math.max(0, Math.min(dates.length - 1, dates.indexOf(state.date) + delta));
    setDate(dates[i]);
  }
  function showOpacity() { $("opacity").value = String(Math.round(state.opacity * 100)); $("opacity-label").textContent = Math.round(state.opacity * 100) + "%"; }
  $("opacity").addEventListener("input", function () {
    state.opacity = parseInt($("opacity").value, 10) / 100;
    showOpacity();
    if (tiles) { tiles.setOpacity(state.opacity); }
    writeHash();
  });

  // ---- coordinates, AOI outline, graticule ---------------------------------------------
  var Coords = L.Control.extend({
    options: { position: "bottomleft" },
    onAdd: function () {
      var div = L.DomUtil.create("div", "coords");
      div.id = "coords";
      map.on("mousemove", function (e) {
        div.textContent = e.latlng.lat.toFixed(5) + ", " + e.latlng.lng.toFixed(5) + "  z" + map.getZoom();
      });
      map.on("zoomend", function () { div.textContent = "z" + map.getZoom(); });
      return div;
    },
  });
  new Coords().addTo(map);
  L.rectangle(aoi, { color: "#333", weight: 1, fill: false, dashArray: "4 4", interactive: false }).addTo(map);
  map.createPane("graticule").style.zIndex = 150;  // under the data: never hides a pixel
  var graticule = L.layerGroup().addTo(map);
  function drawGraticule() {
    graticule.clearLayers();
    var v = map.getBounds();
    var span = Math.max(v.getEast() - v.getWest(), v.getNorth() - v.getSouth());
    var stepDeg = [10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001]
      .filter(function (s) { return span / s >= 3; })[0] || 0.001;
    var style = { color: "#777", weight: 0.6, opacity: 0.6, interactive: false, pane: "graticule" };
    for (var x = Math.ceil(v.getWest() / stepDeg) * stepDeg; x <= v.getEast(); x += stepDeg) {
      graticule.addLayer(L.polyline([[v.getSouth(), x], [v.getNorth(), x]], style));
    }
    for (var y = Math.ceil(v.getSouth() / stepDeg) * stepDeg; y <= v.getNorth(); y += stepDeg) {
      graticule.addLayer(L.polyline([[y, v.getWest()], [y, v.getEast()]], style));
    }
  }

  // ---- click: stored value and time series ---------------------------------------------
  var payloads = {};  // "{layer}/{date}/{z}/{x}/{y}" -> Promise of {meta, values}
  var waiting = {};
  var queue = [];
  var active = 0;
  window.geoprocValues = function (key, meta) {
    if (waiting[key]) { waiting[key](meta); delete waiting[key]; }
  };
  function pump() {
    while (active < PARALLEL_LOADS && queue.length) {
      var job = queue.shift();
      active += 1;
      job();
    }
  }
  function loadValues(la, date, key) {
    var id = la.id + "/" + date + "/" + key;
    if (!payloads[id]) {
      payloads[id] = new Promise(function (resolve, reject) {
        queue.push(function () {
          var script = document.createElement("script");
          var done = function () { active -= 1; script.remove(); pump(); };
          waiting[id] = function (meta) { done(); resolve(meta); };
          script.onerror = function () { done(); reject(new Error("values failed to load: " + script.src)); };
          script.onload = function () {  // runs after the script: it should have called back
            if (waiting[id]) { delete waiting[id]; done(); reject(new Error("values file without key " + id)); }
          };
          var parts = key.split("/");
          script.src = la.values_url.replace("{date}", date).replace("{z}", parts[0])
            .replace("{x}", parts[1]).replace("{y}", parts[2]);
          document.head.appendChild(script);
        });
        pump();
      }).then(decode);
    }
    return payloads[id];
  }
  var ARRAYS = { uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
    uint32: Uint32Array, int32: Int32Array, float32: Float32Array, float64: Float64Array };
  function decode(meta) {
    var bin = atob(meta.data);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buf) {
      return { meta: meta, values: new ARRAYS[meta.dtype](buf) };
    });
  }
  function valueAt(payload, row, col) {
    if (!payload) { return null; }
    var v = payload.values[row * payload.meta.size + col];
    if (payload.meta.nodata === null ? isNaN(v) : v === payload.meta.nodata) { return null; }
    return v;
  }
  function describe(la, raw) {
    if (raw === null) { return "no data"; }
    var legend = la.legend;
    if (legend.type === "classes") {
      var c = legend.classes.filter(function (k) { return k.value === raw; })[0];
      return (c ? c.label : "unknown class") + " (" + raw + ")";
    }
    var v = raw * la_scale(la, "scale") + la_scale(la, "offset");
    return Number(v.toPrecision(6)) + (legend.units ? " " + legend.units : "");
  }
  var scales = {};
  function la_scale(la, what) { return (scales[la.id] || { scale: 1, offset: 0 })[what]; }

  var marker = L.circleMarker([0, 0], { radius: 5, color: "#000", weight: 2, fill: false, interactive: false });
  var probing = 0;
  var probeSeq = 0;
  function probe(latlng) {
    var la = layer();
    var z = la.maxzoom;
    var p = map.project(latlng, z);
    var px = Math.floor(p.x), py = Math.floor(p.y);
    var tx = Math.floor(px / 256), ty = Math.floor(py / 256);
    var row = py - ty * 256, col = px - tx * 256;
    // The value is that of the web pixel (at the deepest zoom) under the click: report its centre.
    var centre = map.unproject(L.point(px + 0.5, py + 0.5), z);
    state.pt = centre;
    marker.setLatLng(centre).addTo(map);
    var key = z + "/" + tx + "/" + ty;
    var seq = ++probeSeq;
    var date = state.date;
    var el = $("value");
    $("probe").hidden = false;
    $("value-where").textContent = centre.lat.toFixed(6) + ", " + centre.lng.toFixed(6) + " on " + date;
    el.textContent = "loading…";
    el.setAttribute("data-raw", "");
    el.setAttribute("data-state", "loading");
    probing += 1;
    settle();
    var dates = la.dates.filter(function (d) { return (la.tiles[d] || []).indexOf(key) >= 0; });
    var jobs = la.dates.map(function (d) {
      return dates.indexOf(d) >= 0 ? loadValues(la, d, key) : Promise.resolve(null);
    });
    Promise.all(jobs).then(function (all) {
      if (seq !== probeSeq) { return; }
      all.forEach(function (pl) { if (pl) { scales[la.id] = { scale: pl.meta.scale, offset: pl.meta.offset }; } });
      var series = all.map(function (pl) { return valueAt(pl, row, col); });
      var raw = series[la.dates.indexOf(date)];
      el.textContent = la.legend.title + ": " + describe(la, raw);
      el.setAttribute("data-raw", raw === null ? "nodata" : String(raw));
      el.setAttribute("data-lat", String(centre.lat));
      el.setAttribute("data-lon", String(centre.lng));
      el.setAttribute("data-date", date);
      el.setAttribute("data-series", JSON.stringify(series));
      el.setAttribute("data-state", "ready");
      drawChart(la, series);
    }).catch(function (err) {
      el.textContent = String(err.message || err);
      fail(err.message || err);
    }).then(function () { probing -= 1; settle(); });
  }
  map.on("click", function (e) { probe(e.latlng); writeHash(); });

  // A small SVG chart: a strip of class colours per date, or a line of physical values.
  function drawChart(la, series) {
    var W = 270, H = 90, L0 = 38, R = 4, T = 6, B = 16;
    var n = series.length;
    // x by time (labels start with YYYY, YYYY-MM-DD...), or by position when they do not parse
    var times = la.dates.map(function (d) { return Date.parse((d.slice(0, 10) + "-01-01").slice(0, 10)); });
    var t0 = times[0], t1 = times[n - 1];
    var byTime = times.every(isFinite) && t1 > t0;
    var xAt = function (i) {
      var f = byTime ? (times[i] - t0) / (t1 - t0) : (n > 1 ? i / (n - 1) : 0.5);
      return L0 + f * (W - L0 - R);
    };
    var svg = '<svg width="' + W + '" height="' + H + '" font-size="10">';
    var cur = la.dates.indexOf(state.date);
    if (la.legend.type === "classes") {
      var w = (W - L0 - R) / n;
      series.forEach(function (v, i) {
        var c = la.legend.classes.filter(function (k) { return k.value === v; })[0];
        svg += '<rect class="cell" data-date="' + la.dates[i] + '" x="' + (L0 + i * w).toFixed(2) + '" y="' + T +
          '" width="' + Math.max(w, 1).toFixed(2) + '" height="' + (H - T - B - 20) + '" fill="' +
          (c ? c.color : "#fff") + '"><title>' + la.dates[i] + ": " + escapeHtml(describe(la, v)) + "</title></rect>";
      });
      svg += '<text x="0" y="' + (T + 12) + '">class</text>';
      svg += '<rect x="' + (L0 + cur * w).toFixed(2) + '" y="' + (T - 2) + '" width="' + Math.max(w, 2).toFixed(2) +
        '" height="' + (H - T - B - 16) + '" fill="none" stroke="#000"/>';
    } else {
      var vals = series.map(function (v) { return v === null ? null : v * la_scale(la, "scale") + la_scale(la, "offset"); });
      var ok = vals.filter(function (v) { return v !== null; });
      var lo = Math.min.apply(null, ok), hi = Math.max.apply(null, ok);
      if (!ok.length) { lo = 0; hi = 1; }
      if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
      var yAt = function (v) { return T + (H - T - B) * (1 - (v - lo) / (hi - lo)); };
      var pts = [];
      vals.forEach(function (v, i) { if (v !== null) { pts.push(xAt(i).toFixed(1) + "," + yAt(v).toFixed(1)); } });
      svg += '<polyline fill="none" stroke="#c0392b" stroke-width="1.5" points="' + pts.join(" ") + '"/>';
      vals.forEach(function (v, i) {
        if (v === null) { return; }
        svg += '<circle class="cell" data-date="' + la.dates[i] + '" cx="' + xAt(i).toFixed(1) + '" cy="' + yAt(v).toFixed(1) +
          '" r="' + (i === cur ? 4 : 2.5) + '" fill="' + (i === cur ? "#000" : "#c0392b") + '"><title>' +
          la.dates[i] + ": " + escapeHtml(describe(la, series[i])) + "</title></circle>";
      });
      svg += '<text x="0" y="' + (T + 8) + '">' + Number(hi.toPrecision(4)) + "</text>";
      svg += '<text x="0" y="' + (H - B) + '">' + Number(lo.toPrecision(4)) + "</text>";
    }
    svg += '<text x="' + L0 + '" y="' + (H - 3) + '">' + la.dates[0] + "</text>";
    svg += '<text x="' + (W - R) + '" y="' + (H - 3) + '" text-anchor="end">' + la.dates[n - 1] + "</text></svg>";
    $("chart").innerHTML = svg;
    Array.prototype.forEach.call($("chart").querySelectorAll(".cell"), function (cell) {
      cell.addEventListener("click", function () { setDate(cell.getAttribute("data-date")); });
    });
  }

  // ---- start ----------------------------------------------------------------------------
  var z = parseInt(params.get("z"), 10), lat = parseFloat(params.get("lat")), lon = parseFloat(params.get("lon"));
  if (isFinite(z) && isFinite(lat) && isFinite(lon)) {
    map.setView([lat, lon], Math.max(map.getMinZoom(), Math.min(map.getMaxZoom(), z)));
  } else {
    map.fitBounds(aoi, { paddingTopLeft: [20, 20], paddingBottomRight: [320, 20] });  // panel
  }
  showOpacity();
  var pt = (params.get("pt") || "").split(",").map(parseFloat);
  if (pt.length === 2 && isFinite(pt[0]) && isFinite(pt[1])) { state.pt = L.latLng(pt[0], pt[1]); }
  setLayer(state.layer, params.get("date"));
  drawGraticule();
  map.on("moveend", function () { drawGraticule(); writeHash(); });
  window.addEventListener("hashchange", function () {
    if (location.hash === lastHash) { return; }  // our own write
    var h = new URLSearchParams(location.hash.replace(/^#/, ""));  // edited by hand: apply it
    var i = manifest.layers.map(function (la) { return la.id; }).indexOf(h.get("layer"));
    var op = parseFloat(h.get("opacity"));
    if (op >= 0 && op <= 1) { state.opacity = op; showOpacity(); }
    if (i >= 0 && i !== state.layer) { setLayer(i, h.get("date")); } else if (h.get("date")) { setDate(h.get("date")); }
    if (tiles) { tiles.setOpacity(state.opacity); }
    var hz = parseInt(h.get("z"), 10), hlat = parseFloat(h.get("lat")), hlon = parseFloat(h.get("lon"));
    if (isFinite(hz) && isFinite(hlat) && isFinite(hlon)) { map.setView([hlat, hlon], hz, { animate: false }); }
    writeHash();
  });
  writeHash();
  window.geoprocViewer = { map: map, state: state, probe: probe, setDate: setDate, setLayer: setLayer };
})();
