// The locations domain's part of the elder's file (locations.map.ELDER_MAP, a page section of /elders): when the
// elders page opens a file ("cc:elder-opened"), the last known position (time, accuracy, source) and the shared map
// (map.js: window.CCMap) with the home, that position, the last day's track and the geofences, read from
// /api/v1/elders/{id}/positions and /geofences; hidden again on "cc:elder-closed".
(function () {
  "use strict";

  var config = CC.config, t = CC.t, label = CC.label, api = CC.api, say = CC.say;
  var tiles = (config.sections.elder_map || {}).map;
  var $ = function (id) { return document.getElementById(id); };
  var view = null;  // the map, made the first time it is shown (Leaflet measures its element)
  var newest = 0;  // only the newest file's answers are drawn

  function home(elder) {
    if (typeof elder.latitude !== "number" || typeof elder.longitude !== "number") return null;
    return { lat: elder.latitude, lon: elder.longitude, label: t("elder_map.home") };
  }

  function showLatest(latest) {
    $("elder-map-none").hidden = !!latest;
    $("elder-map-latest").hidden = !latest;
    if (!latest) return;
    $("elder-map-time").textContent = CC.when(latest.measured_at);
    $("elder-map-accuracy").textContent = t("elder_map.metres", { metres: Math.round(latest.accuracy_m) });
    $("elder-map-source").textContent = label("elder_map.source", latest.source);
  }

  function draw(elder, track, fences) {
    var latest = track.latest;
    showLatest(latest);
    $("elder-map-summary").textContent = t("elder_map.summary", { points: track.items.length,
      fences: fences.length });
    var position = latest ? { lat: latest.lat, lon: latest.lon, accuracy_m: latest.accuracy_m,
      label: t("elder_map.last_position") + " · " + CC.when(latest.measured_at) } : null;
    var place = home(elder);
    $("elder-map-view").hidden = !(position || place || fences.length);
    if ($("elder-map-view").hidden) return;
    if (!view) view = window.CCMap.create($("elder-map-view"), tiles);
    view.show({ home: place, position: position, fences: fences,
      track: track.items.map(function (fix) { return { lat: fix.lat, lon: fix.lon }; }) });
  }

  function open(elder) {
    var asked = ++newest;
    $("elder-map").hidden = false;
    say($("elder-map-message"), t("elder_map.loading"));
    Promise.all([api("GET", "/elders/" + elder.id + "/positions?limit=500"),
      api("GET", "/elders/" + elder.id + "/geofences")]).then(function (answers) {
      if (asked !== newest) return;
      var failed = answers.filter(function (answer) { return answer.status !== 200; })[0];
      if (failed) {
        say($("elder-map-message"), CC.errorText(failed), "bad");
        return;
      }
      say($("elder-map-message"), "");
      draw(elder, answers[0].body, answers[1].body.items);
    });
  }

  document.addEventListener("cc:elder-opened", function (event) {
    if (event.detail && event.detail.elder && event.detail.elder.id) open(event.detail.elder);
  });
  document.addEventListener("cc:elder-closed", function () {
    newest += 1;
    $("elder-map").hidden = true;
  });
}());
