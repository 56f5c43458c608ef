// The panel's map (issue 15), shared by the alarm card and the elder's file: Leaflet (vendor/leaflet.js, loaded
// first) with the tiles of CC_MAP_TILE_URL, or none — then the points, the fences and a scale are drawn on a blank
// background. Positions are WGS-84 everywhere in the platform; tiles of Chinese providers are drawn in GCJ-02
// (CC_MAP_TILE_COORDINATES=gcj02), so what is drawn on them is shifted for display only. Nothing here is text for
// the operator: the pages give the labels. Found as window.CCMap.
(function () {
  "use strict";

  var L = window.L;  // Leaflet (vendor/leaflet.js)

  // ---- WGS-84 -> GCJ-02 ---------------------------------------------------------------------------------------
  // The public "eviltransform" (wgs2gcj) algorithm on the Krasovsky ellipsoid; outside China there is no shift.
  var KRASOVSKY_A = 6378245.0, KRASOVSKY_EE = 0.006693421622965943;

  function outOfChina(lat, lon) {
    return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
  }

  function shift(x, y) {
    var xPi = x * Math.PI, yPi = y * Math.PI;
    var wave = 20.0 * Math.sin(6.0 * xPi) + 20.0 * Math.sin(2.0 * xPi);
    var lat = wave + 20.0 * Math.sin(yPi) + 40.0 * Math.sin(yPi / 3.0) +
      160.0 * Math.sin(yPi / 12.0) + 320.0 * Math.sin(yPi / 30.0);
    var lon = wave + 20.0 * Math.sin(xPi) + 40.0 * Math.sin(xPi / 3.0) +
      150.0 * Math.sin(xPi / 12.0) + 300.0 * Math.sin(xPi / 30.0);
    return {
      lat: lat * 2.0 / 3.0 - 100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)),
      lon: lon * 2.0 / 3.0 + 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)),
    };
  }

  // [lat, lon] on GCJ-02 tiles of a WGS-84 point.
  function wgs84ToGcj02(lat, lon) {
    if (outOfChina(lat, lon)) return [lat, lon];
    var d = shift(lon - 105.0, lat - 35.0);
    var radLat = lat / 180.0 * Math.PI;
    var magic = 1 - KRASOVSKY_EE * Math.sin(radLat) * Math.sin(radLat);
    var sqrtMagic = Math.sqrt(magic);
    var dLat = d.lat * 180.0 / ((KRASOVSKY_A * (1 - KRASOVSKY_EE)) / (magic * sqrtMagic) * Math.PI);
    var dLon = d.lon * 180.0 / (KRASOVSKY_A / sqrtMagic * Math.cos(radLat) * Math.PI);
    return [lat + dLat, lon + dLon];
  }

  // {lat, lon} in WGS-84 of a point picked on GCJ-02 tiles: the forward shift inverted by fixed-point iteration
  // (the shift changes by centimetres over its own few hundred metres, so a few rounds are exact enough).
  function gcj02ToWgs84(lat, lon) {
    var guess = [lat, lon];
    for (var round = 0; round < 4; round += 1) {
      var shifted = wgs84ToGcj02(guess[0], guess[1]);
      guess = [guess[0] + (lat - shifted[0]), guess[1] + (lon - shifted[1])];
    }
    return { lat: guess[0], lon: guess[1] };
  }

  // ---- drawing --------------------------------------------------------------------------------------------------

  // A tooltip's content as text (Leaflet would take a string as HTML).
  function textNode(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span;
  }

  function withTooltip(layer, text) {
    if (text) layer.bindTooltip(textNode(text));
    return layer;
  }

  function isPoint(point) {
    return !!point && typeof point.lat === "number" && typeof point.lon === "number";
  }

  // A map in ``element``: ``tiles`` is the page's config.map ({tileUrl, tileCoordinates, attribution}). Its
  // ``show(data)`` draws, replacing what was drawn:
  //   home      {lat, lon, label}
  //   position  {lat, lon, accuracy_m, label}: the last (or the alarm's) fix, with its accuracy circle
  //   track     [{lat, lon}, …] oldest first
  //   fences    the geofences as GET /api/v1/elders/{id}/geofences gives them ({kind, shape, area, name})
  // and fits the view to it. Every drawn path has a class (cc-map-home, cc-map-position, cc-map-accuracy,
  // cc-map-track, cc-map-fence) the page's stylesheet and the tests can find.
  function create(element, tiles) {
    tiles = tiles || {};
    var gcj = !!tiles.tileUrl && tiles.tileCoordinates === "gcj02";
    var map = L.map(element, { attributionControl: false, zoomSnap: 0.5 });
    element.setAttribute("data-tiles", tiles.tileUrl ? "on" : "off");
    if (tiles.tileUrl) {
      L.tileLayer(tiles.tileUrl, { maxZoom: 19 }).addTo(map);
      if (tiles.attribution) {
        var credit = L.control.attribution({ prefix: false }).addTo(map);
        credit.addAttribution(textNode(tiles.attribution).innerHTML);  // escaped: Leaflet writes it as HTML
      }
    }
    L.control.scale({ imperial: false }).addTo(map);
    var drawn = L.featureGroup().addTo(map);
    var fitted = null;  // what the view was fitted to, to fit again when the element changes size

    function at(point) {
      return gcj ? wgs84ToGcj02(point.lat, point.lon) : [point.lat, point.lon];
    }

    // A fence's layer and the area it covers, or null for a shape this map does not know.
    function fence(geofence) {
      var area = geofence.area || {}, options = { className: "cc-map-fence cc-map-fence-" + geofence.kind,
        color: geofence.kind === "keep_out" ? "#b3261e" : "#2e7d32", weight: 2, fillOpacity: 0.08 };
      if (geofence.active === false) options.dashArray = "4 4";
      if (geofence.shape === "circle" && isPoint(area.center)) {
        var center = L.latLng(at(area.center));
        return [L.circle(center, L.extend({ radius: area.radius_m }, options)), center.toBounds(2 * area.radius_m)];
      }
      var points = (area.points || []).filter(isPoint).map(at);
      if (geofence.shape === "polygon" && points.length >= 3) return [L.polygon(points, options), points];
      return null;
    }

    function fit() {
      if (!fitted || !element.clientWidth) return;  // hidden: fitted again once it has a size
      map.invalidateSize();
      if (!fitted.getNorthEast().equals(fitted.getSouthWest())) {
        map.fitBounds(fitted, { padding: [24, 24], maxZoom: 17 });
      } else {
        map.setView(fitted.getCenter(), 16);
      }
    }

    function show(data) {
      drawn.clearLayers();
      // The extent is reckoned from the points, not asked of the layers: Leaflet measures a circle only once the
      // map has a view, which it gets from this extent.
      var extent = L.latLngBounds([]), layers = [];
      function add(layer, covers) {
        layers.push(layer);
        extent.extend(covers);
      }
      (data.fences || []).forEach(function (geofence) {
        var shape = fence(geofence);
        if (shape) add(withTooltip(shape[0], geofence.name), shape[1]);
      });
      var track = (data.track || []).filter(isPoint).map(at);
      if (track.length > 1) {
        add(L.polyline(track, { className: "cc-map-track", color: "#1565c0", weight: 3, opacity: 0.8 }), track);
      }
      if (isPoint(data.home)) {
        add(withTooltip(L.circleMarker(at(data.home), { className: "cc-map-home", radius: 7, color: "#6a1b9a",
          fillColor: "#ce93d8", fillOpacity: 1, weight: 2 }), data.home.label), [at(data.home)]);
      }
      var position = data.position;
      if (isPoint(position)) {
        var where = L.latLng(at(position));
        if (typeof position.accuracy_m === "number" && position.accuracy_m > 0) {
          add(L.circle(where, { className: "cc-map-accuracy", radius: position.accuracy_m, color: "#d84315",
            weight: 1, fillOpacity: 0.12, interactive: false }), where.toBounds(2 * position.accuracy_m));
        }
        add(withTooltip(L.circleMarker(where, { className: "cc-map-position", radius: 7, color: "#d84315",
          fillColor: "#ff7043", fillOpacity: 1, weight: 2 }), position.label), [where]);
      }
      fitted = layers.length ? extent : null;
      if (fitted && element.clientWidth) fit();
      else if (fitted) map.setView(fitted.getCenter(), 16);  // hidden: a view for now, fitted once it has a size
      else map.setView([35.0, 105.0], 4);  // nothing to show: China, so the scale and any tiles mean something
      layers.forEach(function (layer) { layer.addTo(drawn); });
      element.setAttribute("data-drawn", String(layers.length));
    }

    // Drawn while hidden (a card not yet shown) or resized: Leaflet must measure the element again.
    if (window.ResizeObserver) new ResizeObserver(fit).observe(element);

    // A fence being drawn (the elder's file): ``draft`` {shape: "circle", center, radius_m} or {shape: "polygon",
    // points}, WGS-84; null clears it. Drawn over the rest, class cc-map-draft; the view is not moved.
    var draftLayer = L.featureGroup().addTo(map);
    function showDraft(draft) {
      draftLayer.clearLayers();
      if (!draft) return;
      var options = { className: "cc-map-draft", color: "#ef6c00", weight: 2, dashArray: "6 4", fillOpacity: 0.1 };
      var corners = (draft.points || []).filter(isPoint).map(at);
      if (draft.shape === "circle" && isPoint(draft.center) && draft.radius_m > 0) {
        L.circle(at(draft.center), L.extend({ radius: draft.radius_m }, options)).addTo(draftLayer);
      } else if (draft.shape === "polygon" && corners.length >= 3) {
        L.polygon(corners, options).addTo(draftLayer);
      } else if (draft.shape === "polygon" && corners.length === 2) {
        L.polyline(corners, options).addTo(draftLayer);
      }
      corners.concat(draft.shape === "circle" && isPoint(draft.center) ? [at(draft.center)] : [])
        .forEach(function (corner) {
          L.circleMarker(corner, { className: "cc-map-draft-point", radius: 4, color: "#ef6c00", weight: 2,
            fillOpacity: 1 }).addTo(draftLayer);
        });
    }

    // ``callback({lat, lon})`` (WGS-84) for each click on the map; null stops it.
    // (A click on a drawn shape reaches the map too: Leaflet fires it on every target up to the map's container.)
    var picking = null;
    function clicked(event) {
      if (!picking) return;
      var point = gcj ? gcj02ToWgs84(event.latlng.lat, event.latlng.lng)
        : { lat: event.latlng.lat, lon: event.latlng.lng };
      picking({ lat: Math.round(point.lat * 1e6) / 1e6, lon: Math.round(point.lon * 1e6) / 1e6 });
    }
    map.on("click", clicked);
    function onPick(callback) {
      picking = callback;
      element.classList.toggle("cc-map-picking", !!callback);
    }

    var view = { map: map, show: show, drawn: drawn, showDraft: showDraft, onPick: onPick };
    element.ccMap = view;  // for a person at the console, and the browser tests: what is drawn where
    return view;
  }

  window.CCMap = { create: create, wgs84ToGcj02: wgs84ToGcj02, gcj02ToWgs84: gcj02ToWgs84 };
}());
