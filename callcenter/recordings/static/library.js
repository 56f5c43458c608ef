// The recordings library: search, then replay (or download) with a reason. Plain JavaScript, no build step;
// common.js (window.CC) is loaded first.
// The audio element cannot send the bearer token, so each replay first asks the API for a signed playback link
// (the access and its reason are audited there, once); the element then streams from that link with byte ranges.
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, errorText = CC.errorText, when = CC.when;
  var $ = function (id) { return document.getElementById(id); };
  var current = null;

  function label(prefix, value) { return CC.label(prefix, value, ""); }

  // A local calendar day as the UTC instant it starts at (the API wants aware times).
  function dayStart(value, plusDays) {
    var parts = value.split("-").map(function (p) { return parseInt(p, 10); });
    return new Date(parts[0], parts[1] - 1, parts[2] + (plusDays || 0)).toISOString();
  }

  function search(event) {
    if (event) event.preventDefault();
    var query = CC.query({
      limit: 100,
      since: $("f-since").value ? dayStart($("f-since").value) : null,
      until: $("f-until").value ? dayStart($("f-until").value, 1) : null,
      phone: $("f-phone").value.trim(), agent: $("f-agent").value.trim(), elder_id: $("f-elder").value.trim(),
      work_order_id: $("f-order").value.trim(), queue: $("f-queue").value, sos: $("f-sos").value
    });
    say($("library-message"), "");
    api("GET", "/recordings?" + query).then(function (result) {
      var body = $("library-body");
      CC.clear(body);
      if (result.status !== 200) { say($("library-message"), errorText(result), "bad"); return; }
      result.body.items.forEach(function (item) {
        var call = item.call || {};
        var row = el("tr", null, { "data-recording-id": String(item.id) });
        row.appendChild(el("td", item.serial_number));
        row.appendChild(el("td", when(item.created_at)));
        row.appendChild(el("td", label("common.call_kind", call.kind)));
        row.appendChild(el("td", call.elder_name || ""));
        row.appendChild(el("td", call.caller_number || ""));
        row.appendChild(el("td", call.agent || ""));
        row.appendChild(el("td", label("library.queue", call.queue)));
        row.appendChild(el("td", item.duration_seconds === null ? "" : Math.round(item.duration_seconds) + " s"));
        row.appendChild(CC.buttonCell(t("library.open"), function () { choose(item); }));
        body.appendChild(row);
      });
      $("library-none").hidden = result.body.items.length > 0;
      say($("library-message"), t("library.found", { count: result.body.total }));
    });
  }

  function choose(item) {
    current = item;
    $("player").hidden = false;
    $("player-serial").textContent = item.serial_number;
    $("audio").removeAttribute("src");
    $("audio").load();
    say($("player-message"), "");
    CC.clear($("accesses"));
    $("reason").focus();
  }

  function playback(download) {
    var reason = $("reason").value.trim();
    if (!current) return Promise.resolve(null);
    if (reason.length < 4) {
      say($("player-message"), t("library.reason_needed"), "bad");
      return Promise.resolve(null);
    }
    return api("POST", "/recordings/" + current.id + "/playback", { reason: reason, download: download })
      .then(function (result) {
        if (result.status !== 201) { say($("player-message"), errorText(result), "bad"); return null; }
        return result.body;
      });
  }

  $("library-search").addEventListener("submit", search);
  $("reason-form").addEventListener("submit", function (event) {
    event.preventDefault();
    playback(false).then(function (link) {
      if (!link) return;
      $("audio").src = link.url;
      $("audio").play().catch(function () { /* autoplay refused: the controls are there */ });
      say($("player-message"), t("library.playing"), "good");
    });
  });
  if ($("btn-download")) {
    $("btn-download").addEventListener("click", function () {
      playback(true).then(function (link) { if (link) window.location.assign(link.url); });
    });
  }
  if ($("btn-accesses")) {
    $("btn-accesses").addEventListener("click", function () {
      if (!current) return;
      api("GET", "/recordings/" + current.id + "/accesses").then(function (result) {
        var list = $("accesses");
        CC.clear(list);
        if (result.status !== 200) { say($("player-message"), errorText(result), "bad"); return; }
        result.body.items.forEach(function (access) {
          list.appendChild(el("li", when(access.at) + " · " + access.actor_label + " · " +
            label("library.access", access.action) + " · " + (access.details.reason || "")));
        });
        if (!list.firstChild) list.appendChild(el("li", t("library.no_accesses")));
      });
    });
  }
  search();
})();
