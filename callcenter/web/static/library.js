// The recordings library: search, then replay (or download) with a reason. Plain JavaScript, no build step;
// common.js (window.CC) is loaded first.
// The audio element cannot send the bearer token, so each replay first asks the API for a signed playback link
// (the access and its reason are audited there, once); the element then streams from that link with byte ranges.
(function () {
  "use strict";

  var config = CC.config, t = CC.t, el = CC.el, api = CC.api;
  var $ = function (id) { return document.getElementById(id); };
  var current = null;

  function label(prefix, value) { return CC.label(prefix, value, ""); }

  function say(node, text, kind) {
    node.textContent = text || "";
    node.className = "message" + (kind ? " " + kind : "");
  }

  function errorText(result) {
    if (result.status === 0) return t("error.network");
    return t("error.generic", { message: result.body && result.body.error ? result.body.error.message
      : "HTTP " + result.status });
  }

  function when(iso) {
    var date = new Date(iso);
    return isNaN(date.getTime()) ? iso : date.toLocaleString(config.lang);
  }

  // A local calendar day as the UTC instant it starts at (the API wants aware times).
  function dayStart(value, plusDays) {
    var parts = value.split("-").map(function (p) { return parseInt(p, 10); });
    return new Date(parts[0], parts[1] - 1, parts[2] + (plusDays || 0)).toISOString();
  }

  function search(event) {
    if (event) event.preventDefault();
    var params = [];
    function add(name, value) { if (value) params.push(name + "=" + encodeURIComponent(value)); }
    if ($("f-since").value) add("since", dayStart($("f-since").value));
    if ($("f-until").value) add("until", dayStart($("f-until").value, 1));
    add("phone", $("f-phone").value.trim());
    add("agent", $("f-agent").value.trim());
    add("elder_id", $("f-elder").value.trim());
    add("work_order_id", $("f-order").value.trim());
    add("queue", $("f-queue").value);
    add("sos", $("f-sos").value);
    say($("library-message"), "");
    api("GET", "/recordings?limit=100" + (params.length ? "&" + params.join("&") : "")).then(function (result) {
      var body = $("library-body");
      CC.clear(body);
      if (result.status !== 200) { say($("library-message"), errorText(result), "bad"); return; }
      result.body.items.forEach(function (item) {
        var call = item.call || {};
        var row = el("tr", null, { "data-recording-id": String(item.id) });
        row.appendChild(el("td", item.serial_number));
        row.appendChild(el("td", when(item.created_at)));
        row.appendChild(el("td", label("call", call.kind)));
        row.appendChild(el("td", call.elder_name || ""));
        row.appendChild(el("td", call.caller_number || ""));
        row.appendChild(el("td", call.agent || ""));
        row.appendChild(el("td", label("queue", call.queue)));
        row.appendChild(el("td", item.duration_seconds === null ? "" : Math.round(item.duration_seconds) + " s"));
        var cell = el("td");
        var open = el("button", t("library.open"), { type: "button", "class": "secondary small" });
        open.addEventListener("click", function () { choose(item); });
        cell.appendChild(open);
        row.appendChild(cell);
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
    if (reason.length < 4) { say($("player-message"), t("library.reason_needed"), "bad"); return Promise.resolve(null); }
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
            label("access", access.action) + " · " + (access.details.reason || "")));
        });
        if (!list.firstChild) list.appendChild(el("li", t("library.no_accesses")));
      });
    });
  }
  search();
})();
