// The locations domain's part of the elder's file (locations.map.ELDER_MAP, a page section of /elders): when the
// elders page opens a file ("cc:elder-opened"), the last known position (time, accuracy, source) and the shared map
// (map.js: window.CCMap) with the home, that position, the last day's track and the geofences, read from
// /api/v1/elders/{id}/positions and /geofences; hidden again on "cc:elder-closed". For those the API lets change
// the geofences (config mayEdit), the fences listed with a switch and a delete each, and a form to draw a new one:
// clicks on the map pick a circle's centre or a polygon's corners (WGS-84, whatever the tiles), drawn as a draft,
// then POST /geofences; the API's errors go beside the fields they name.
(function () {
  "use strict";

  var config = CC.config, t = CC.t, label = CC.label, api = CC.api, say = CC.say;
  var section = config.sections.elder_map || {};
  var tiles = section.map;
  var el = CC.el;
  var $ = function (id) { return document.getElementById(id); };
  var view = null;  // the map, made the first time it is shown (Leaflet measures its element)
  var newest = 0;  // only the newest file's answers are drawn
  var shownElder = null;  // the file whose map is shown
  var picked = [];  // the points clicked for the fence being drawn (WGS-84)

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
    $("elder-map-view").hidden = !(position || place || fences.length || section.mayEdit);
    if ($("elder-map-view").hidden) return;
    if (!view) {
      view = window.CCMap.create($("elder-map-view"), tiles);
      if (section.mayEdit) view.onPick(pick);
    }
    view.show({ home: place, position: position, fences: fences,
      track: track.items.map(function (fix) { return { lat: fix.lat, lon: fix.lon }; }) });
    showDraft();
  }

  // ---- the geofences: listed with their switches, and a new one drawn on the map ----------------------------

  var form = $("elder-fence-form");

  function areaText(fence) {
    if (fence.shape === "circle") return t("elder_map.fences.circle", { radius: Math.round(fence.radius_m) });
    return t("elder_map.fences.polygon", { corners: (fence.area.points || []).length });
  }

  function listFences(fences) {
    if (!form) return;
    var body = $("elder-fences-body");
    CC.clear(body);
    $("elder-fences").hidden = !fences.length;
    $("elder-fences-none").hidden = !!fences.length;
    fences.forEach(function (fence) {
      var row = el("tr", null, { "data-fence-id": String(fence.id) });
      row.appendChild(el("td", fence.name));
      row.appendChild(el("td", label("elder_map.kind.short", fence.kind)));
      row.appendChild(el("td", areaText(fence)));
      row.appendChild(el("td", fence.allowed_hours ? t("elder_map.fences.hours", fence.allowed_hours)
        : t("elder_map.fences.always")));
      row.appendChild(el("td", t(fence.active ? "elder_map.fences.active" : "elder_map.fences.inactive")
        + (fence.state ? " · " + label("elder_map.fences", fence.state.side) : "")));
      var actions = el("td");
      var toggle = el("button", t(fence.active ? "elder_map.fences.deactivate" : "elder_map.fences.activate"),
        { type: "button", "class": "secondary small", "data-action": "toggle" });
      toggle.addEventListener("click", function () { switchFence(fence); });
      var remove = el("button", t("elder_map.fences.delete"),
        { type: "button", "class": "secondary small", "data-action": "delete" });
      remove.addEventListener("click", function () { deleteFence(fence); });
      actions.appendChild(toggle);
      actions.appendChild(remove);
      row.appendChild(actions);
      body.appendChild(row);
    });
  }

  function switchFence(fence) {
    var elder = shownElder;
    api("PATCH", "/elders/" + elder.id + "/geofences/" + fence.id, { version: fence.version, active: !fence.active })
      .then(function (result) {
        if (elder !== shownElder) return;
        if (result.status !== 200) { say($("elder-fences-message"), CC.errorText(result), "bad"); return; }
        say($("elder-fences-message"), t("elder_map.fences.changed", { name: fence.name,
          state: t(result.body.active ? "elder_map.fences.active" : "elder_map.fences.inactive") }), "good");
        open(elder);
      });
  }

  function deleteFence(fence) {
    if (!window.confirm(t("elder_map.fences.delete_confirm", { name: fence.name }))) return;
    var elder = shownElder;
    api("DELETE", "/elders/" + elder.id + "/geofences/" + fence.id).then(function (result) {
      if (elder !== shownElder) return;
      if (result.status !== 200) { say($("elder-fences-message"), CC.errorText(result), "bad"); return; }
      say($("elder-fences-message"), t("elder_map.fences.deleted", { name: fence.name }), "good");
      open(elder);
    });
  }

  function shape() {
    return form ? $("fence-shape").value : null;
  }

  function pick(point) {
    if (!form || !shownElder) return;
    if (shape() === "circle") picked = [point];
    else picked.push(point);
    showDraft();
  }

  function radius() {
    return CC.numberOrNull($("fence-radius").value);
  }

  function showDraft() {
    if (!form) return;
    var circle = shape() === "circle";
    Array.prototype.forEach.call(form.querySelectorAll("[data-for-shape]"), function (node) {
      node.hidden = node.getAttribute("data-for-shape") !== shape();
    });
    $("fence-picked").textContent = circle
      ? (picked.length ? t("elder_map.new.center", picked[0]) : t("elder_map.new.pick_center"))
      : (picked.length ? t("elder_map.new.corners", { count: picked.length }) : t("elder_map.new.pick_corners"));
    if (!view) return;
    view.showDraft(!picked.length ? null : circle ? { shape: "circle", center: picked[0], radius_m: radius() }
      : { shape: "polygon", points: picked });
  }

  function resetForm() {
    picked = [];
    CC.clearFieldErrors(form, $("elder-fence-errors"));
    $("fence-name").value = "";
    $("fence-from").value = "";
    $("fence-until").value = "";
    showDraft();
  }

  if (form) {
    $("fence-shape").addEventListener("change", function () { picked = []; showDraft(); });
    $("fence-radius").addEventListener("input", showDraft);
    $("fence-clear").addEventListener("click", function () { picked = []; showDraft(); });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var elder = shownElder;
      if (!elder) return;
      var circle = shape() === "circle";
      var area = circle ? { type: "circle", center: picked[0] || null, radius_m: radius() }
        : { type: "polygon", points: picked };
      var from = CC.orNull($("fence-from").value), until = CC.orNull($("fence-until").value);
      var body = { name: $("fence-name").value.trim(), kind: $("fence-kind").value, area: area,
                   allowed_hours: from || until ? { start: from, end: until } : null, active: true };
      api("POST", "/elders/" + elder.id + "/geofences", body).then(function (result) {
        if (elder !== shownElder) return;
        if (result.status !== 201) {
          CC.showFieldErrors(form, $("elder-fence-errors"), $("elder-fence-message"), result,
                             { fields: "elder_map.field", fix: "elder_map.fix_fields" });
          return;
        }
        resetForm();
        say($("elder-fence-message"), t("elder_map.new.saved", { name: result.body.name }), "good");
        open(elder);
      });
    });
  }

  function open(elder) {
    var asked = ++newest;
    if (!shownElder || shownElder.id !== elder.id) picked = [];
    shownElder = elder;
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
      listFences(answers[1].body.items);
    });
  }

  document.addEventListener("cc:elder-opened", function (event) {
    if (event.detail && event.detail.elder && event.detail.elder.id) open(event.detail.elder);
  });
  document.addEventListener("cc:elder-closed", function () {
    newest += 1;
    shownElder = null;
    picked = [];
    if (form) resetForm();
    $("elder-map").hidden = true;
  });
}());
