// Vehicles on a plain coordinate canvas: no tile service (the center is offline).
// Latitude/longitude are drawn equirectangular, longitude scaled by cos(latitude)
// so distances look right at the fleet's latitude, with a labelled grid.
"use strict";
(function () {
  const C = window.JF, h = C.h;
  const COLORS = ["#1f4e8c", "#1f8c7a", "#7b3fa0", "#b26a00", "#3f6b1f", "#a0306b", "#2f7fbf"];

  const M_PER_DEGREE = 111320;       // metres per degree of latitude

  // The corners a fence needs on screen: its points, or its circle's bounding box.
  function fenceExtent(f) {
    if (f.shape !== "circle") return f.points;
    const dLat = f.radius_m / M_PER_DEGREE, dLon = dLat / Math.cos(f.center[0] * Math.PI / 180);
    return [[f.center[0] - dLat, f.center[1] - dLon], [f.center[0] + dLat, f.center[1] + dLon]];
  }

  function niceStep(span) {
    const raw = span / 6, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    return [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw);
  }

  function draw(canvas, data) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    const points = [];
    for (const v of data.vehicles) for (const p of v.track) points.push([p.lat, p.lon]);
    for (const f of data.geofences) points.push(...fenceExtent(f));
    if (!points.length) {
      g.fillStyle = "#6b7280";
      g.font = "14px system-ui";
      g.fillText("No positions reported in this period.", 20, 30);
      return;
    }
    let [minLat, maxLat, minLon, maxLon] = [90, -90, 180, -180];
    for (const [lat, lon] of points) {
      minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
      minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
    }
    const padLat = Math.max((maxLat - minLat) * 0.12, 0.002), padLon = Math.max((maxLon - minLon) * 0.12, 0.002);
    minLat -= padLat; maxLat += padLat; minLon -= padLon; maxLon += padLon;
    const k = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
    const scale = Math.min((width - 60) / ((maxLon - minLon) * k), (height - 40) / (maxLat - minLat));
    // Centre the drawing in the canvas (the fleet's extent rarely has the canvas's shape).
    const left = 50 + ((width - 60) - (maxLon - minLon) * k * scale) / 2;
    const bottom = height - 30 - ((height - 40) - (maxLat - minLat) * scale) / 2;
    const lon0 = minLon, lat0 = minLat;
    const x = lon => left + (lon - lon0) * k * scale;
    const y = lat => bottom - (lat - lat0) * scale;
    // From here on the extent is what the canvas shows, so the grid covers all of it.
    [minLon, maxLon] = [minLon - (left - 50) / (k * scale), minLon + (width - 10 - left) / (k * scale)];
    [minLat, maxLat] = [minLat - (height - 30 - bottom) / scale, minLat + (bottom - 10) / scale];

    // grid
    g.strokeStyle = "#d5dde6"; g.fillStyle = "#6b7280"; g.font = "11px system-ui"; g.lineWidth = 1;
    const step = niceStep(Math.max(maxLat - minLat, (maxLon - minLon) * k));
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    for (let lat = Math.ceil(minLat / step) * step; lat <= maxLat; lat += step) {
      g.beginPath(); g.moveTo(x(minLon), y(lat)); g.lineTo(x(maxLon), y(lat)); g.stroke();
      g.fillText(lat.toFixed(digits) + "°", 4, y(lat) + 4);
    }
    for (let lon = Math.ceil(minLon / step) * step; lon <= maxLon; lon += step) {
      g.beginPath(); g.moveTo(x(lon), y(minLat)); g.lineTo(x(lon), y(maxLat)); g.stroke();
      g.fillText(lon.toFixed(digits) + "°", x(lon) - 16, height - 10);
    }
    // geofences: keep-out zones red, keep-in zones (depots, route corridors) green
    const metres = m => m / M_PER_DEGREE * scale;
    for (const f of data.geofences) {
      const color = f.rule === "keep_in" ? "31, 140, 122" : "198, 40, 40";
      g.fillStyle = "rgba(" + color + ", 0.12)";
      g.strokeStyle = "rgb(" + color + ")";
      g.setLineDash([6, 4]); g.lineWidth = 1.5;
      g.beginPath();
      if (f.shape === "circle") {
        g.arc(x(f.center[1]), y(f.center[0]), metres(f.radius_m), 0, 2 * Math.PI);
      } else {
        f.points.forEach(([lat, lon], i) => i ? g.lineTo(x(lon), y(lat)) : g.moveTo(x(lon), y(lat)));
        if (f.shape === "polygon") g.closePath();
      }
      if (f.shape === "corridor") {
        // A corridor is its centre line widened to width_m: drawn as a thick translucent stroke.
        g.save();
        g.setLineDash([]); g.lineWidth = Math.max(2, metres(f.width_m)); g.lineCap = "round"; g.lineJoin = "round";
        g.strokeStyle = "rgba(" + color + ", 0.15)";
        g.stroke();
        g.restore();
      } else {
        g.fill();
      }
      g.stroke();
      g.setLineDash([]);
      const [labelLat, labelLon] = f.shape === "circle" ? f.center : f.points[0];
      g.fillStyle = "rgb(" + color + ")"; g.font = "12px system-ui";
      g.fillText(f.name, x(labelLon) + 4, y(labelLat) - 4);
    }
    // tracks, alarms, last positions
    data.vehicles.forEach((v, i) => {
      const color = COLORS[i % COLORS.length];
      g.strokeStyle = color; g.lineWidth = 2;
      g.beginPath();
      v.track.forEach((p, j) => j ? g.lineTo(x(p.lon), y(p.lat)) : g.moveTo(x(p.lon), y(p.lat)));
      g.stroke();
      const last = v.last;
      g.fillStyle = color; g.strokeStyle = "#fff"; g.lineWidth = 2;
      g.beginPath(); g.arc(x(last.lon), y(last.lat), 6, 0, 2 * Math.PI); g.fill(); g.stroke();
      // Alarms as red rings, drawn last so the vehicle's own dot never hides one.
      g.strokeStyle = "#c62828"; g.lineWidth = 3;
      for (const a of v.alarms) {
        g.beginPath(); g.arc(x(a.lon), y(a.lat), 11, 0, 2 * Math.PI); g.stroke();
      }
      g.fillStyle = "#1d2330"; g.font = "bold 12px system-ui";
      g.fillText(v.site || v.account, x(last.lon) + 9, y(last.lat) + 4);
    });
  }

  C.views.vehicles = async function (container) {
    const data = await C.api("GET", "api/vehicles");
    const canvas = h("canvas", {id: "map"});
    const list = data.vehicles.map((v, i) => {
      return h("div", {class: "panel vehicle", "data-account": v.account},
        h("span", {class: "swatch", style: {background: COLORS[i % COLORS.length]}}),
        h("a", {href: "#/device/" + v.account}, h("strong", {}, v.site || v.account)), " ", C.badge(v.state),
        v.alarms.length ? [" ", C.badge(v.alarms.length + " alarm" + (v.alarms.length > 1 ? "s" : ""), "alarm")] : null,
        h("div", {class: "small"}, v.last.lat.toFixed(5) + ", " + v.last.lon.toFixed(5)),
        h("div", {class: "small muted"}, C.ago(v.last.at_ms), " · ", v.track.length, " points"),
        h("div", {class: "small"}, v.inside.length ? "inside " + v.inside.join(", ") : "outside every geofence"));
    });
    container.replaceChildren(
      h("h2", {}, "Vehicles ", h("span", {class: "muted small"}, "tracks since " + C.time(data.since_ms))),
      h("div", {class: "map-wrap"}, canvas,
        h("div", {}, list.length ? list : h("div", {class: "empty"}, "No vehicle reported a position."))));
    draw(canvas, data);
    const redraw = () => draw(canvas, data);
    window.addEventListener("resize", redraw);
    return () => window.removeEventListener("resize", redraw);
  };
})();
