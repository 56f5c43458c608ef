// The supervisors' wallboard. Plain JavaScript, no build step; common.js (window.CC) is loaded first.
// The snapshot comes from GET /api/v1/wallboard (at load and after every WebSocket (re)connect) and then from
// {"type": "wallboard"} pushes on /ws. Elapsed times are counted here, once a second, from the snapshot's
// timestamps, corrected by the server's clock (generated_at), so the server never pushes just for a clock.
// Everything the server sends is put into the page with textContent, never as HTML.
(function () {
  "use strict";

  var config = CC.config, t = CC.t, el = CC.el, clear = CC.clear;
  var $ = function (id) { return document.getElementById(id); };

  var label = CC.label;  // label(prefix, value): "—" for no value

  // Clock times in the centre's time zone (the one "today" is counted in), whatever the browser's is.
  var zone = null;

  function clock(iso, withDate) {
    var date = new Date(iso);
    var options = zone ? { timeZone: zone } : {};
    try {
      return withDate ? date.toLocaleString(config.lang, options) : date.toLocaleTimeString(config.lang, options);
    } catch {  // a zone this browser does not know
      return withDate ? date.toLocaleString(config.lang) : date.toLocaleTimeString(config.lang);
    }
  }

  // ---- clocks: server time = browser time + offset (measured at each snapshot) ------------------------------
  var offset = 0;

  function serverNow() { return Date.now() + offset; }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = (h && m < 10 ? "0" : "") + m, ss = (s < 10 ? "0" : "") + s;
    return (h ? h + ":" : "") + mm + ":" + ss;
  }

  // A cell that counts up from an instant: filled now and by the 1 s timer.
  function timer(since) {
    var node = el("span", null, { "class": "timer" });
    if (since) {
      node.setAttribute("data-since", since);
      tick(node);
    } else {
      node.textContent = "—";
    }
    return node;
  }

  function tick(node) {
    var since = Date.parse(node.getAttribute("data-since"));
    if (isNaN(since)) return;
    var seconds = Math.max(0, Math.floor((serverNow() - since) / 1000));
    node.textContent = duration(seconds);
    node.setAttribute("data-seconds", String(seconds));
  }

  function tickAll() {
    var nodes = document.querySelectorAll("[data-since]");
    for (var i = 0; i < nodes.length; i++) tick(nodes[i]);
  }

  // ---- rendering ---------------------------------------------------------------------------------------------
  var shownAt = 0;  // generated_at of the snapshot on screen: an older one (a slow GET) never replaces it

  function callerText(item) {
    var parts = [];
    if (item.elder_name) parts.push(item.elder_name);
    if (item.caller_name && item.caller_name !== item.elder_name) parts.push(item.caller_name);
    parts.push(item.caller_number || t("wallboard.unknown_caller"));
    return parts.join(" · ");
  }

  // ---- listen / whisper / barge: one click rings the supervisor's own phone, attached to the agent's call ---------
  var spying = {};  // call id → the mode this supervisor is in on that call
  var SPY_MODES = ["listen", "whisper", "barge"];

  function spyAction(call, method, mode) {
    var path = "/calls/" + call.call_id + "/spy";
    CC.api(method, path, mode ? { mode: mode } : undefined).then(function (result) {
      var message = $("spy-message");
      if (result.status === 200 || result.status === 201) {
        if (result.body.state === "ended") delete spying[call.call_id];
        else spying[call.call_id] = result.body.mode;
        message.textContent = result.body.state === "ended" ? t("wallboard.spy.stopped")
          : t(result.status === 201 ? "wallboard.spy.ringing" : "wallboard.spy.switched",
              { mode: label("wallboard.spy.mode", result.body.mode) });
        message.className = "message good";
      } else {
        if (result.status === 404) delete spying[call.call_id];
        message.textContent = t("common.error.generic", { message: result.body && result.body.error
          ? result.body.error.message : "HTTP " + result.status });
        message.className = "message bad";
      }
      refreshSpyCells();
    });
  }

  function spyCell(call) {
    var cell = el("td", null, { "class": "spy", "data-call-id": String(call.call_id) });
    fillSpyCell(cell, call);
    return cell;
  }

  function fillSpyCell(cell, call) {
    clear(cell);
    if (call.state !== "talking" || !call.agent) return;
    var current = spying[call.call_id];
    SPY_MODES.forEach(function (mode) {
      var button = el("button", label("wallboard.spy.mode", mode), { type: "button", "data-spy-mode": mode,
        "class": "small " + (current === mode ? "" : "secondary"), "aria-pressed": String(current === mode) });
      button.addEventListener("click", function () { spyAction(call, current ? "PATCH" : "POST", mode); });
      cell.appendChild(button);
    });
    if (current) {
      var stop = el("button", t("wallboard.spy.stop"),
        { type: "button", "data-spy-mode": "stop", "class": "small danger" });
      stop.addEventListener("click", function () { spyAction(call, "DELETE"); });
      cell.appendChild(stop);
    }
  }

  var lastCalls = [];

  function refreshSpyCells() {
    lastCalls.forEach(function (call) {
      var cell = document.querySelector('td.spy[data-call-id="' + call.call_id + '"]');
      if (cell) fillSpyCell(cell, call);
    });
  }

  function renderCalls(calls) {
    lastCalls = calls;
    var live = {};
    calls.forEach(function (call) { live[call.call_id] = true; });
    Object.keys(spying).forEach(function (id) { if (!live[id]) delete spying[id]; });  // the call ended
    var body = $("wb-calls-body");
    clear(body);
    calls.forEach(function (call) {
      var row = el("tr", null, { "data-linkedid": call.linkedid, "data-call-id": String(call.call_id),
                                 "data-state": call.state, "class": call.sos ? "sos" : "" });
      var kind = el("td");
      kind.appendChild(el("span", label("common.call_kind", call.kind),
        { "class": "badge" + (call.sos ? " sos" : "") }));
      row.appendChild(kind);
      row.appendChild(el("td", callerText(call), { "class": "caller" }));
      row.appendChild(el("td", label("wallboard.callstate", call.state), { "class": "state",
                                                                          "data-call-state": call.state }));
      row.appendChild(el("td", call.queue ? label("wallboard.queue", call.queue) : "—"));
      row.appendChild(el("td", call.agent || "—", { "class": "agent" }));
      var inState = el("td", null, { "class": "in-state" });
      inState.appendChild(timer(call.state_since));
      row.appendChild(inState);
      var total = el("td");
      total.appendChild(timer(call.started_at));
      row.appendChild(total);
      row.appendChild(spyCell(call));
      body.appendChild(row);
    });
    $("wb-calls-count").textContent = String(calls.length);
    $("wb-no-calls").hidden = calls.length > 0;
    $("wb-calls-table").hidden = calls.length === 0;
  }

  function field(card, name) { return card.querySelector('[data-field="' + name + '"]'); }

  function renderQueues(queues) {
    queues.forEach(function (queue) {
      var card = $("queue-" + queue.name);
      if (!card) return;
      card.classList.toggle("busy", queue.waiting > 0);
      field(card, "waiting").textContent = String(queue.waiting);
      var longest = field(card, "longest_wait");
      clear(longest);
      longest.appendChild(timer(queue.longest_wait_since));
      field(card, "agents").textContent = queue.agents_available + " / " + queue.agents_logged_in;
      ["offered", "answered", "answered_within_15s", "answered_within_60s", "abandoned"].forEach(function (name) {
        field(card, name).textContent = String(queue.today[name]);
      });
      var list = field(card, "callers");
      clear(list);
      queue.callers.forEach(function (caller) {
        var item = el("li", null, { "data-linkedid": caller.linkedid, "class": caller.sos ? "sos" : "" });
        item.appendChild(el("span", t("wallboard.position", { position: caller.position }), { "class": "pos" }));
        item.appendChild(el("span", callerText(caller), { "class": "caller" }));
        item.appendChild(timer(caller.joined_at));
        list.appendChild(item);
      });
    });
  }

  function renderAgents(agents) {
    var body = $("wb-agents-body");
    clear(body);
    agents.forEach(function (agent) {
      var row = el("tr", null, { "data-username": agent.username, "class": agent.status === "offline" ? "off" : "" });
      row.appendChild(el("td", agent.username));
      row.appendChild(el("td", label("common.agent_status", agent.status),
        { "class": "status", "data-status": agent.status }));
      var since = el("td");
      since.appendChild(timer(agent.since));
      row.appendChild(since);
      row.appendChild(el("td", agent.queues.map(function (q) { return label("wallboard.queue", q); }).join("、")
                               || "—"));
      row.appendChild(el("td", agent.pause_reason || "—"));
      var call = el("td");
      if (agent.call_id !== null) {
        call.appendChild(el("span", (agent.sos ? label("common.call_kind", "sos") + " " : "") + "#" + agent.call_id,
                            { "class": "badge" + (agent.sos ? " sos" : "") }));
      } else {
        call.textContent = "—";
      }
      row.appendChild(call);
      body.appendChild(row);
    });
    $("wb-no-agents").hidden = agents.length > 0;
  }

  // Disks low or full (callcenter.system.disk): a banner above everything else while any lasts.
  function renderAlarms(alarms) {
    var list = $("wb-alarm-list");
    clear(list);
    alarms.forEach(function (alarm) {
      var values = { part: label("wallboard.disk", alarm.part), since: clock(alarm.since, true),
                     free: alarm.free_mb === null ? "—" : String(alarm.free_mb), min: String(alarm.min_free_mb),
                     effect: t("wallboard.disk_full_effect." + alarm.part) };
      list.appendChild(el("li", t("wallboard.alarm." + alarm.code, values),
                          { "class": alarm.severity, "data-code": alarm.code, "data-part": alarm.part }));
    });
    $("wb-alarms").hidden = alarms.length === 0;
  }

  function render(board) {
    var generated = Date.parse(board.generated_at);
    if (isNaN(generated) || generated < shownAt) return;
    shownAt = generated;
    offset = generated - Date.now();
    zone = board.timezone;
    $("wb-ami-down").hidden = board.ami_connected;
    renderAlarms(board.alarms || []);
    renderCalls(board.calls);
    renderQueues(board.queues);
    renderAgents(board.agents);
    $("wb-updated").textContent = t("wallboard.updated", { time: clock(board.generated_at, false) });
    $("wb-today-note").textContent = t("wallboard.today_note", { time: clock(board.day_start, true),
                                                                 timezone: board.timezone });
    document.body.setAttribute("data-wallboard-at", board.generated_at);
  }

  function load() {
    return CC.api("GET", "/wallboard").then(function (result) {
      if (result.status === 200 && result.body) render(result.body);
    });
  }

  // ---- live: wallboard pushes on /ws (reconnecting with backoff, as every page does) ------------------------
  function onMessage(message) {
    if (message.type === "hello") load();  // whatever changed while disconnected is read afresh
    else if (message.type === "wallboard") render(message);
  }

  load();
  setInterval(tickAll, 1000);
  CC.live(onMessage);
})();
