// The agent page: agent bar, screen-pop, all agents. Plain JavaScript, no build step; common.js (window.CC) is
// loaded first. Data comes only from the REST API and the /ws WebSocket, with the bearer token of this page's session.
// Everything the server sends is put into the page with textContent, never as HTML.
(function () {
  "use strict";

  var config = CC.config, t = CC.t, el = CC.el, clear = CC.clear, say = CC.say, api = CC.api;
  var errorText = CC.errorText;
  var $ = function (id) { return document.getElementById(id); };
  var NONE = t("panel.pop.none");  // what the panel shows for no value

  // A machine value in the operator's words (NONE for no value).
  function label(prefix, value) { return CC.label(prefix, value, NONE); }

  function when(iso) { return iso ? CC.when(iso) : NONE; }

  // ---- Agent bar -------------------------------------------------------------------------------------------
  var me = encodeURIComponent(config.username);

  function showAgentState(state) {
    var status = state ? state.status : "offline";
    var node = $("agent-status");
    if (!node) return;
    node.textContent = label("common.agent_status", status);
    node.setAttribute("data-status", status);
    var detail = [];
    if (state && state.paused && state.pause_reason) detail.push(state.pause_reason);
    if (state && state.wrap_up && state.wrap_up_until) {
      var until = new Date(state.wrap_up_until).toLocaleTimeString(config.lang);
      detail.push(t("panel.bar.wrap_up_until", { time: until }));
    }
    if (state && state.queues && state.queues.length) {
      detail.push(t("panel.bar.queues") + ": " + state.queues.join(", "));
    }
    if (state && state.since) detail.push(t("panel.bar.since") + " " + when(state.since));
    $("agent-detail").textContent = detail.length ? "(" + detail.join(" · ") + ")" : "";
    var inQueue = !!(state && state.queues && state.queues.length);
    $("btn-queue-login").disabled = inQueue;
    $("btn-queue-logout").disabled = !inQueue;
    $("btn-pause").disabled = !inQueue || state.paused;
    $("pause-reason").disabled = !inQueue || state.paused;
    // Resume also ends a wrap-up early ("ready").
    $("btn-unpause").disabled = !inQueue || !(state.paused || state.wrap_up);
  }

  function loadAgentState() {
    if (!config.agentBar) return Promise.resolve();
    return api("GET", "/agents/" + me).then(function (result) {
      if (result.status === 200) showAgentState(result.body);
      else if (result.status === 404) showAgentState(null);  // never logged in since the platform started
      else say($("bar-message"), errorText(result), "bad");
    });
  }

  function agentAction(action, body) {
    say($("bar-message"), "");
    return api("POST", "/agents/" + me + "/" + action, body).then(function (result) {
      if (result.status === 200) showAgentState(result.body);
      else say($("bar-message"), errorText(result), "bad");
    });
  }

  if (config.agentBar) {
    $("btn-queue-login").addEventListener("click", function () { agentAction("login"); });
    $("btn-queue-logout").addEventListener("click", function () { agentAction("logout"); });
    $("btn-pause").addEventListener("click", function () {
      agentAction("pause", { reason: $("pause-reason").value });
    });
    $("btn-unpause").addEventListener("click", function () { agentAction("unpause"); });
  }

  // ---- All agents (supervisors, admins, auditors) -----------------------------------------------------------
  var agents = {};

  function renderAgents() {
    var body = $("agents-body");
    if (!body) return;
    clear(body);
    var names = Object.keys(agents).sort();
    names.forEach(function (name) {
      var state = agents[name];
      var row = el("tr", null, { "data-agent": name });
      row.appendChild(el("td", name));
      row.appendChild(el("td", label("common.agent_status", state.status), { "data-status": state.status }));
      row.appendChild(el("td", state.pause_reason || ""));
      row.appendChild(el("td", (state.queues || []).join(", ")));
      row.appendChild(el("td", when(state.since)));
      body.appendChild(row);
    });
    $("agents-none").hidden = names.length > 0;
  }

  function loadAgents() {
    if (!config.allAgents) return Promise.resolve();
    return api("GET", "/agents").then(function (result) {
      if (result.status !== 200) return;
      agents = {};
      result.body.items.forEach(function (state) { agents[state.username] = state; });
      renderAgents();
    });
  }

  // ---- Screen-pop ------------------------------------------------------------------------------------------
  var currentPop = null;
  var currentOrder = null;
  // The call the conference controls act on: the screen-pop's, or the call placed from the alarm card (whose
  // conference then shows on the card) — whichever came last. ``ended``: the call is over, nobody more is dialled.
  var conferenceCall = null;  // {id, ended}
  // Which conference role a contact of each kind joins as (volunteers are not called into an emergency).
  var CONTACT_PARTY_ROLES = { relative: "relative", doctor: "doctor", social_worker: "social_worker" };

  function conferenceAllowed() { return !!conferenceCall && !conferenceCall.ended && !config.readOnly; }

  // One field of the pop's file: the catalogue key of its term, its value (a list joined), flagged when ``alert``.
  function addField(list, key, value, alert) {
    var text = Array.isArray(value) ? value.join("、") : value;
    CC.addField(list, t(key), text === null || text === undefined || text === "" ? NONE : text,
      alert ? { "class": "alert" } : {});
  }

  function renderElder(elder) {
    var fields = $("elder-fields");
    clear(fields);
    addField(fields, "panel.pop.name", elder.full_name);
    addField(fields, "panel.pop.gender", elder.gender);
    addField(fields, "panel.pop.age", elder.age);
    addField(fields, "panel.pop.phone", elder.phone);
    addField(fields, "panel.pop.address", [elder.address, elder.community].filter(Boolean).join(" · "));
    addField(fields, "panel.pop.coordinates",
      elder.latitude !== null && elder.latitude !== undefined ? elder.latitude + ", " + elder.longitude : null);
    addField(fields, "panel.pop.living", elder.living_situation ? label("common.living", elder.living_situation) : null,
      elder.living_situation === "alone");
    addField(fields, "panel.pop.conditions", elder.conditions || []);
    addField(fields, "panel.pop.medications", elder.medications || []);
    addField(fields, "panel.pop.allergies", elder.allergies || [], (elder.allergies || []).length > 0);
    addField(fields, "panel.pop.care_level", elder.care_level);
    addField(fields, "panel.pop.language", elder.language);
    $("elder-file").hidden = false;

    var body = $("contacts-body");
    clear(body);
    (elder.contacts || []).forEach(function (contact) {
      var row = el("tr");
      row.appendChild(el("td", contact.name));
      row.appendChild(el("td", label("panel.contact", contact.role)));
      row.appendChild(el("td", contact.relationship || ""));
      row.appendChild(el("td", contact.phone));
      var cell = el("td");
      // One click dials the contact into this call's conference (the elder and the agent are moved in first).
      var partyRole = CONTACT_PARTY_ROLES[contact.role];
      var dial = el("button", t("panel.pop.dial"), { "type": "button", "class": "secondary small",
        "data-contact-id": String(contact.id),
        "title": partyRole ? t("panel.conf.dial_contact") : t("panel.conf.not_a_party"),
        "aria-label": t("panel.pop.dial") + " " + contact.name + " " + contact.phone });
      dial.disabled = !partyRole || !conferenceAllowed();
      if (partyRole) {
        dial.setAttribute("data-party-role", partyRole);
        dial.addEventListener("click", function () { addParty({ role: partyRole, contact_id: contact.id }); });
      }
      cell.appendChild(dial);
      row.appendChild(cell);
      body.appendChild(row);
    });
    $("contacts").hidden = false;
  }

  function renderDevice(device) {
    var fields = $("device-fields");
    clear(fields);
    if (!device) { $("device").hidden = true; return; }
    addField(fields, "panel.pop.device_kind", label("panel.device", device.kind));
    addField(fields, "panel.pop.device_status", label("panel.device", device.status), device.status === "faulty");
    addField(fields, "panel.pop.battery", device.battery_percent === null || device.battery_percent === undefined
      ? null : device.battery_percent + "%", device.battery_percent !== null && device.battery_percent < 20);
    addField(fields, "panel.pop.heartbeat", device.last_heartbeat_at ? when(device.last_heartbeat_at) : null);
    $("device").hidden = false;
  }

  function renderHistory(pop) {
    var calls = $("recent-calls");
    var orders = $("open-orders");
    clear(calls);
    clear(orders);
    (pop.recent_calls || []).forEach(function (call) {
      calls.appendChild(el("li", when(call.started_at) + " · " + label("common.call_kind", call.kind) + " · " +
        label("panel.disposition", call.disposition)));
    });
    if (!calls.firstChild) calls.appendChild(el("li", NONE));
    (pop.open_work_orders || []).forEach(function (order) {
      orders.appendChild(el("li", order.number + " · " + label("common.order_kind", order.kind) + " · P" +
        order.priority + " · " + label("common.order_status", order.status) + " · " + order.title));
    });
    if (!orders.firstChild) orders.appendChild(el("li", NONE));
    $("history").hidden = !pop.elder;
  }

  function showPop(pop) {
    currentPop = pop;
    conferenceCall = { id: pop.call_id, ended: false };
    conferenceAt("pop");
    var section = $("pop");
    section.classList.toggle("sos", !!pop.sos);
    section.classList.remove("ended");
    $("pop-idle").hidden = true;
    $("pop-card").hidden = false;
    $("pop-ended").hidden = true;
    $("sos-banner").hidden = !pop.sos;
    $("pop-caller").textContent = pop.caller_number || NONE;
    if (pop.elder) {
      renderElder(pop.elder);
      $("unknown").hidden = true;
    } else {
      $("elder-file").hidden = true;
      $("contacts").hidden = true;
      $("unknown").hidden = false;
      $("search-q").value = "";
      clear($("search-results"));
      // Prefill the number only when it looks like one (a SIP endpoint name is not a phone number).
      $("register-phone").value = /^\+?\d[\d -]{2,}$/.test(pop.caller_number || "") ? pop.caller_number : "";
      // The database is away: the pop says what Asterisk knows, and why the file is missing.
      say($("unknown-message"), pop.degraded ? t("panel.pop.degraded") : "");
    }
    renderDevice(pop.device);
    renderHistory(pop);
    showConference();
    say($("order-message"), "");
    $("order-reload").hidden = true;
    if (pop.work_order) loadOrder(pop.work_order.id);
    else showOrder(null);
  }

  function endPop(message) {
    if (!currentPop || message.call_id !== currentPop.call_id) return;
    // Greyed but kept: the agent may still be completing the work order.
    $("pop").classList.add("ended");
    $("pop-ended").hidden = false;
    if (conferenceCall && conferenceCall.id === message.call_id) conferenceCall.ended = true;
    updateConferenceButtons();
    loadRoster();
  }

  // ---- One-click emergency conference --------------------------------------------------------------------------
  var roster = [];
  var DIALLED_FAILED = { busy: true, no_answer: true, failed: true, left: true };

  function partyLabel(party) {
    var role = label("panel.party", party.role);
    return party.name && party.name !== party.role ? role + " · " + party.name : role;
  }

  function conferenceAction(method, path, done) {
    say($("conf-message"), "");
    return api(method, "/calls/" + conferenceCall.id + "/conference" + path).then(function (result) {
      if (result.status >= 200 && result.status < 300) {
        if (done) done(result.body);
        return loadRoster();
      }
      say($("conf-message"), errorText(result), "bad");
      return null;
    });
  }

  function addParty(body) {
    if (!conferenceAllowed()) return;
    say($("conf-message"), t("panel.conf.dialling"));
    api("POST", "/calls/" + conferenceCall.id + "/conference/participants", body).then(function (result) {
      if (result.status === 201) {
        say($("conf-message"), t("panel.conf.dialled", { party: partyLabel(result.body) }), "good");
        loadRoster();
      } else {
        say($("conf-message"), errorText(result), "bad");
      }
    });
  }

  function partyButton(text, handler, extraClass) {
    var button = el("button", text, { type: "button", "class": "small " + (extraClass || "secondary") });
    button.disabled = !conferenceAllowed();
    button.addEventListener("click", handler);
    return button;
  }

  function renderRoster(participants) {
    roster = participants || [];
    var body = $("conf-body");
    clear(body);
    roster.forEach(function (party) {
      var row = el("tr", null, { "data-party-id": String(party.id), "data-role": party.role });
      row.appendChild(el("td", partyLabel(party)));
      row.appendChild(el("td", party.number || ""));
      var dialled = party.role !== "elder" && party.role !== "agent";
      // The elder and the agent are not rung: until their join they are being moved into the bridge.
      var state = !dialled && party.state === "ringing" ? t("panel.conf.moving")
        : label("panel.partystate", party.state);
      if (party.failure_reason && party.state !== "joined") state += " (" + party.failure_reason + ")";
      if (party.muted && party.state === "joined") state += " · " + t("panel.conf.muted");
      row.appendChild(el("td", state, { "data-party-state": party.state, "class": "party-state" }));
      var actions = el("td", null, { "class": "actions" });
      var path = "/participants/" + party.id;
      if (party.state === "joined" && party.role !== "agent") {
        actions.appendChild(party.muted
          ? partyButton(t("panel.conf.unmute"), function () { conferenceAction("POST", path + "/unmute"); })
          : partyButton(t("panel.conf.mute"), function () { conferenceAction("POST", path + "/mute"); }));
        if (dialled) {
          actions.appendChild(partyButton(t("panel.conf.remove"), function () { conferenceAction("DELETE", path); }));
        }
      }
      if (dialled && DIALLED_FAILED[party.state]) {
        actions.appendChild(partyButton(t("panel.conf.redial"), function () {
          conferenceAction("POST", path + "/redial");
        }, "primary"));
      }
      row.appendChild(actions);
      body.appendChild(row);
    });
    $("conf-table").hidden = roster.length === 0;
    $("conf-controls").hidden = roster.length === 0;
    updateConferenceButtons();
  }

  function updateConferenceButtons() {
    if (!$("conference")) return;
    var allowed = conferenceAllowed();
    var agentIn = roster.some(function (p) { return p.role === "agent" && p.state === "joined"; });
    var anyoneIn = roster.some(function (p) { return p.state === "joined"; });
    Array.prototype.forEach.call(
      document.querySelectorAll("#conf-add button, #conf-body button, #contacts-body button[data-party-role]"),
      function (button) { button.disabled = !allowed; });
    $("conf-leave").disabled = !agentIn;
    $("conf-end").disabled = !anyoneIn;
  }

  function loadRoster() {
    if (!conferenceCall || !$("conference")) return Promise.resolve();
    var callId = conferenceCall.id;
    return api("GET", "/calls/" + callId + "/conference").then(function (result) {
      if (!conferenceCall || conferenceCall.id !== callId) return;
      if (result.status === 200) renderRoster(result.body.participants);
      else say($("conf-message"), errorText(result), "bad");
    });
  }

  function showConference() {
    if (!$("conference")) return;
    $("conference").hidden = config.readOnly;
    say($("conf-message"), "");
    renderRoster([]);
    loadRoster();  // after a reload, or a panel that connects mid-conference, the roster is read afresh
  }

  // The one conference section moves (with its listeners) to where its call is shown: the pop, or the alarm card.
  var conferenceHomes = $("conference") ? {
    pop: { parent: $("conference").parentNode, before: $("conference").nextSibling },
    alarm: { parent: $("alarm-conference-slot"), before: null },
  } : {};

  function conferenceAt(where) {
    var home = conferenceHomes[where];
    if (home && home.parent && $("conference").parentNode !== home.parent) {
      home.parent.insertBefore($("conference"), home.before);
    }
  }

  if ($("conference")) {
    Array.prototype.forEach.call(document.querySelectorAll("#conf-add button"), function (button) {
      button.addEventListener("click", function () { addParty({ role: button.getAttribute("data-role") }); });
    });
    $("conf-leave").addEventListener("click", function () { conferenceAction("POST", "/leave"); });
    $("conf-end").addEventListener("click", function () {
      if (window.confirm(t("panel.conf.end_confirm"))) conferenceAction("POST", "/end");
    });
  }

  // ---- This call's work order ------------------------------------------------------------------------------
  (function fillKinds() {
    var select = $("order-kind");
    if (!select) return;
    config.orderKinds.forEach(function (kind) {
      select.appendChild(el("option", label("common.order_kind", kind), { value: kind }));
    });
    var services = $("order-service");
    services.appendChild(el("option", t("common.order.service_none"), { value: "" }));
    config.serviceTypes.forEach(function (service) {
      services.appendChild(el("option", label("common.service", service), { value: service }));
    });
  })();

  // The provider list for the chosen service: the elder's own choice first, then by area, each with its reason.
  // ``selected``: the order's provider; with none, the best suggestion is proposed (the agent may change it).
  var suggestionsFor = null;

  function loadProviders(service, elderId, selected) {
    var select = $("order-provider");
    var key = service + "/" + elderId;
    suggestionsFor = key;
    clear(select);
    select.appendChild(el("option", service ? t("panel.order.provider_none") : t("common.order.provider_needs_service"),
      { value: "" }));
    select.disabled = !service || config.readOnly;
    if (!service) return Promise.resolve();
    var path = "/providers/suggestions?service=" + encodeURIComponent(service) +
      (elderId ? "&elder_id=" + elderId : "");
    return api("GET", path).then(function (result) {
      if (suggestionsFor !== key) return;  // the agent picked another service meanwhile
      if (result.status !== 200) { say($("order-message"), errorText(result), "bad"); return; }
      var found = false;
      result.body.items.forEach(function (item) {
        var option = el("option", item.provider.name + " · " + label("common.match", item.reason),
          { value: String(item.provider.id), "data-reason": item.reason });
        if (selected === item.provider.id) { option.selected = true; found = true; }
        select.appendChild(option);
      });
      if (selected && !found) {  // e.g. a provider no longer active: still shown, so nothing changes by itself
        var kept = el("option", "#" + selected, { value: String(selected) });
        kept.selected = true;
        select.appendChild(kept);
      } else if (!selected && result.body.items.length) {
        select.selectedIndex = 1;  // propose the best match
      }
      if (!result.body.items.length) select.options[0].textContent = t("common.order.provider_no_match");
    });
  }

  function showOrder(order) {
    currentOrder = order;
    $("order-none").hidden = !!order;
    $("order-form").hidden = !order;
    if (!order) return;
    $("order-number").textContent = order.number;
    $("order-status").textContent = label("common.order_status", order.status);
    $("order-kind").value = order.kind;
    $("order-description").value = order.description || "";
    $("order-priority").value = String(order.priority);
    $("order-location").value = order.location_text || "";
    $("order-service").value = order.service || "";
    loadProviders(order.service, order.elder_id, order.provider_id);
    $("order-save").disabled = config.readOnly;
  }

  // The pop carries the order as it was at the answer; the form always shows the order as it is now, so a
  // saved draft is what a reloaded page shows.
  function loadOrder(id) {
    return api("GET", "/work-orders/" + id).then(function (result) {
      if (result.status === 200) {
        showOrder(result.body);
        $("order-reload").hidden = true;
      } else {
        say($("order-message"), errorText(result), "bad");
      }
    });
  }

  if ($("order-form")) {
    $("order-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (!currentOrder) return;
      var location = $("order-location").value.trim();
      var service = $("order-service").value;
      var provider = $("order-provider").value;
      var changes = {
        version: currentOrder.version,
        kind: $("order-kind").value,
        description: $("order-description").value,
        priority: parseInt($("order-priority").value, 10),
        location_text: location ? location : null,
        service: service ? service : null,
        provider_id: service && provider ? parseInt(provider, 10) : null
      };
      $("order-save").disabled = true;
      api("PATCH", "/work-orders/" + currentOrder.id, changes).then(function (result) {
        $("order-save").disabled = false;
        if (result.status === 200) {
          currentOrder = result.body;
          say($("order-message"), t("panel.order.saved"), "good");
        } else if (result.status === 409) {
          say($("order-message"), t("panel.order.conflict"), "bad");
          $("order-reload").hidden = false;
        } else {
          say($("order-message"), t("panel.order.error", { message: errorText(result) }), "bad");
        }
      });
    });
    $("order-service").addEventListener("change", function () {
      if (currentOrder) loadProviders($("order-service").value, currentOrder.elder_id, null);
    });
    $("order-reload").addEventListener("click", function () {
      say($("order-message"), "");
      if (currentOrder) loadOrder(currentOrder.id);
    });
  }

  // ---- Unknown caller: search and register -------------------------------------------------------------------
  function showElderFile(elder) {
    $("unknown").hidden = true;
    renderElder(elder);  // the REST ElderOut has the same fields as the pop's elder, but no age
  }

  // A search gives summaries (numbers masked): the file is read, and that read audited, only when it is shown.
  function openElderFile(id) {
    api("GET", "/elders/" + id).then(function (result) {
      if (result.status !== 200) { say($("unknown-message"), errorText(result), "bad"); return; }
      showElderFile(result.body);
    });
  }

  if ($("search-form")) {
    $("search-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var q = $("search-q").value.trim();
      if (!q) return;
      api("GET", "/elders?limit=10&q=" + encodeURIComponent(q)).then(function (result) {
        var list = $("search-results");
        clear(list);
        if (result.status !== 200) { say($("unknown-message"), errorText(result), "bad"); return; }
        if (!result.body.items.length) list.appendChild(el("li", t("common.elder_search.none")));
        result.body.items.forEach(function (elder) {
          var item = el("li", [elder.full_name, elder.birth_year, elder.community, elder.phone_masked]
            .filter(function (part) { return part !== null && part !== undefined && part !== ""; }).join(" · ") + " ");
          var show = el("button", t("panel.search.show"), { type: "button", "class": "secondary" });
          show.addEventListener("click", function () { openElderFile(elder.id); });
          item.appendChild(show);
          list.appendChild(item);
        });
      });
    });
    $("register-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var body = { full_name: $("register-name").value.trim() };
      if ($("register-phone").value.trim()) body.phone = $("register-phone").value.trim();
      if ($("register-address").value.trim()) body.address = $("register-address").value.trim();
      api("POST", "/elders", body).then(function (result) {
        if (result.status === 201) {
          say($("unknown-message"), t("panel.register.done"), "good");
          showElderFile(result.body);
        } else {
          say($("unknown-message"), errorText(result), "bad");
        }
      });
    });
  }

  // ---- Alarm card (issue 15): an alarm offered to this agent by the alarm distributor -------------------------
  // The card shows an ``alarm_offer`` with a tone until it is taken or withdrawn; take, call the elder and close it
  // with an outcome go through the REST API with the alarm's version.
  var alarmCard = null;  // the offer on screen: {alarm, elder, device, readings, track, …}
  var alarmTone = null;  // the repeating tone's timer
  var audioContext = null;
  var alarmTaking = null;  // the alarm whose take is on its way: a withdrawal meanwhile does not hide it

  // A generated two-tone alert (WebAudio, no sound file), repeated every two seconds until stopped.
  function beep() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      audioContext = audioContext || new Context();
      if (audioContext.state === "suspended") {
        audioContext.resume();
        say($("alarm-message"), t("panel.alarm.sound_blocked"));
      }
      [0, 0.35].forEach(function (start, index) {
        var oscillator = audioContext.createOscillator(), gain = audioContext.createGain();
        oscillator.type = "square";
        oscillator.frequency.value = index ? 660 : 880;
        gain.gain.value = 0.15;
        oscillator.connect(gain);
        gain.connect(audioContext.destination);
        oscillator.start(audioContext.currentTime + start);
        oscillator.stop(audioContext.currentTime + start + 0.3);
      });
      document.documentElement.setAttribute("data-alarm-tone", String(Date.now()));
    } catch {  // no audio device: the card still shows
      say($("alarm-message"), t("panel.alarm.sound_blocked"));
    }
  }

  function startTone() {
    stopTone();
    beep();
    alarmTone = window.setInterval(beep, 2000);
  }

  function stopTone() {
    if (alarmTone !== null) window.clearInterval(alarmTone);
    alarmTone = null;
  }

  var alarmCascade = null;  // the card's alarm's latest contact cascade (below)

  function alarmState(state) {
    var card = $("alarm-card");
    card.setAttribute("data-state", state);
    $("alarm-state").textContent = label("panel.alarm_state", state);
    var offered = state === "new", handling = state === "taken" || state === "responding";
    $("alarm-take").hidden = !offered;
    $("alarm-deadline").hidden = !offered;  // the answer target matters only until it is taken
    $("alarm-take").disabled = !offered || config.readOnly;
    $("alarm-call").disabled = !handling || config.readOnly || !(alarmCard && alarmCard.elder);
    $("alarm-conference").disabled = !handling || config.readOnly || !(alarmCard && alarmCard.callId);
    $("alarm-resolve-form").hidden = !handling;
    $("alarm-cascade").disabled = !handling || config.readOnly || !(alarmCard && alarmCard.elder) ||
      !!(alarmCascade && (alarmCascade.state === "running" || alarmCascade.state === "paused"));
    if (!offered) stopTone();
  }

  // ---- The alarm's contact cascade (callcenter/cascades) -------------------------------------------------------

  function renderCascade(cascade) {
    alarmCascade = cascade;
    $("alarm-cascade-box").hidden = !cascade;
    if (alarmCard) alarmState(alarmCard.alarm.state);
    if (!cascade) return;
    $("alarm-cascade-box").setAttribute("data-state", cascade.state);
    $("cascade-state").textContent = label("panel.cascade_state", cascade.state);
    var calls = $("cascade-calls");
    clear(calls);
    cascade.calls.forEach(function (call) {
      var parts = [call.name, label("panel.responder_channel", call.channel), label("panel.cascade_call", call.state)];
      if (call.key) parts.push(t("panel.cascade.key", { key: call.key }) + " " + when(call.key_at));
      var item = el("li", parts.join(" · "));
      item.setAttribute("data-state", call.state);
      calls.appendChild(item);
    });
    var accepted = $("cascade-accepted");
    accepted.hidden = cascade.state !== "accepted" && cascade.state !== "exhausted";
    accepted.className = "message " + (cascade.state === "accepted" ? "good" : "bad");
    accepted.textContent = cascade.state === "accepted"
      ? t("panel.cascade.accepted", { name: cascade.accepted_by, minutes: cascade.eta_minutes })
      : cascade.state === "exhausted" ? t("panel.cascade.exhausted") : "";
    var open = cascade.state === "running" || cascade.state === "paused";
    $("cascade-pause").hidden = cascade.state !== "running";
    $("cascade-resume").hidden = cascade.state !== "paused";
    $("cascade-stop").hidden = !open;
    ["cascade-pause", "cascade-resume", "cascade-stop"].forEach(function (id) { $(id).disabled = config.readOnly; });
  }

  function loadCascade() {
    if (!alarmCard) return;
    var alarmId = alarmCard.alarm.id;
    api("GET", "/cascades?alarm_id=" + alarmId + "&limit=1").then(function (result) {
      if (!alarmCard || alarmCard.alarm.id !== alarmId || result.status !== 200) return;
      renderCascade(result.body.items[0] || null);
    });
  }

  function cascadeAction(action) {
    if (!alarmCascade) return;
    api("POST", "/cascades/" + alarmCascade.id + "/" + action).then(function (result) {
      if (result.status === 200) renderCascade(result.body);
      else say($("alarm-message"), errorText(result), "bad");
    });
  }

  function renderAlarmElder(card) {
    var fields = $("alarm-elder-fields"), contacts = $("alarm-contacts");
    clear(fields);
    clear(contacts);
    $("alarm-no-elder").hidden = !!card.elder;
    if (!card.elder) return;
    var elder = card.elder;
    addField(fields, "panel.pop.name", elder.full_name);
    addField(fields, "panel.pop.age", elder.age);
    addField(fields, "panel.pop.phone", elder.phone);
    addField(fields, "panel.pop.address", [elder.address, elder.community].filter(Boolean).join(" · "));
    addField(fields, "panel.pop.living", elder.living_situation ? label("common.living", elder.living_situation) : null,
      elder.living_situation === "alone");
    addField(fields, "panel.pop.conditions", elder.conditions || []);
    addField(fields, "panel.pop.medications", elder.medications || []);
    addField(fields, "panel.pop.allergies", elder.allergies || [], (elder.allergies || []).length > 0);
    addField(fields, "panel.pop.care_level", elder.care_level);
    (elder.contacts || []).forEach(function (contact) {
      contacts.appendChild(el("li", label("panel.contact", contact.role) + " · " + contact.name +
        (contact.relationship ? "（" + contact.relationship + "）" : "") + " · " + contact.phone));
    });
  }

  function renderAlarmWhere(card) {
    var fields = $("alarm-where-fields"), alarm = card.alarm, where = alarm.location;
    clear(fields);
    if (where) {
      var text = where.latitude + ", " + where.longitude;
      if (where.accuracy_m !== null && where.accuracy_m !== undefined) {
        text += " · " + t("panel.alarm.accuracy", { metres: Math.round(where.accuracy_m) });
      }
      if (where.source) text += " · " + label("panel.location_source", where.source);
      addField(fields, "panel.alarm.device_position", text);
    } else {
      addField(fields, "panel.alarm.device_position", t("panel.alarm.no_position"));
    }
    addField(fields, "panel.alarm.home", alarm.elder_address);
    addField(fields, "panel.alarm.work_order", alarm.work_order_number);
    var device = card.device;
    var deviceFields = $("alarm-device-fields");
    clear(deviceFields);
    $("alarm-device").hidden = !device;
    if (device) {
      addField(deviceFields, "panel.pop.device_kind", label("panel.device", device.kind));
      var battery = device.battery_percent;
      addField(deviceFields, "panel.pop.battery", battery === null || battery === undefined ? null : battery + "%",
        battery !== null && battery < 20);
      addField(deviceFields, "panel.pop.heartbeat", device.last_heartbeat_at ? when(device.last_heartbeat_at) : null);
    }
    // The places the readings and locations domains fill in: shown only when the card carries their data.
    var readings = $("alarm-readings-list");
    clear(readings);
    (card.readings || []).forEach(function (reading) {
      var parts = [label("panel.reading_type", reading.type), t("panel.reading." + reading.type, reading.values),
        when(reading.measured_at)];
      if (reading.out_of_range) parts.push(t("panel.alarm.reading_out_of_range"));
      var item = el("li", parts.join(" · "));
      item.setAttribute("data-type", reading.type);
      if (reading.out_of_range) item.className = "reading-out";
      readings.appendChild(item);
    });
    $("alarm-readings").hidden = !(card.readings && card.readings.length);
    drawAlarmMap(card);
  }

  // The card's map (web/static/map.js): the home, where the device was (else its last fix), the elder's last
  // day's track (the card's ``track``) and geofences (``fences``), whenever there is one of them to draw.
  var alarmMap = null;
  function drawAlarmMap(card) {
    var where = card.alarm.location, elder = card.elder, track = card.track || [], fences = card.fences || [];
    var home = elder && typeof elder.latitude === "number" && typeof elder.longitude === "number"
      ? { lat: elder.latitude, lon: elder.longitude, label: t("panel.alarm.home") } : null;
    var last = where ? { lat: where.latitude, lon: where.longitude, accuracy_m: where.accuracy_m }
      : track[track.length - 1];
    var position = last ? { lat: last.lat, lon: last.lon, accuracy_m: last.accuracy_m,
      label: t("panel.alarm.device_position") } : null;
    $("alarm-map").hidden = !(home || position || track.length || fences.length);
    $("alarm-track").textContent = track.length ? t("panel.alarm.track_points", { count: track.length }) : "";
    if ($("alarm-map").hidden) return;
    alarmMap = alarmMap || window.CCMap.create($("alarm-map-view"), config.map);
    alarmMap.show({ home: home, position: position, track: track, fences: fences });
  }

  function showAlarm(card) {
    alarmCard = card;
    var alarm = card.alarm;
    var section = $("alarm-card");
    section.setAttribute("data-alarm-id", String(alarm.id));
    section.setAttribute("data-type", alarm.type);
    section.className = "alarm-card severity-" + alarm.severity;
    $("alarm-type").textContent = label("panel.alarm_type", alarm.type);
    $("alarm-severity").textContent = label("panel.alarm_severity", alarm.severity);
    $("alarm-time").textContent = when(alarm.occurred_at) +
      (alarm.repeat_count ? " · " + t("panel.alarm.repeats", { count: alarm.repeat_count }) : "");
    $("alarm-number").textContent = alarm.number;
    $("alarm-deadline").textContent = card.answer_by
      ? t("panel.alarm.answer_by", { time: new Date(card.answer_by).toLocaleTimeString(config.lang) }) : "";
    renderAlarmElder(card);
    renderAlarmWhere(card);
    $("alarm-note").value = "";
    Array.prototype.forEach.call(document.querySelectorAll("input[name='alarm-outcome']"),
      function (input) { input.checked = false; });
    say($("alarm-message"), "");
    section.hidden = false;
    renderCascade(null);
    alarmState(alarm.state);
    if (alarm.state !== "new") loadCascade();  // a card shown again (a reload) with its cascade under way
    if (alarm.state === "new") startTone();
  }

  function alarmWithdrawn(message) {
    if (!alarmCard || alarmCard.alarm.id !== message.alarm_id || alarmTaking === message.alarm_id) return;
    if ($("alarm-card").getAttribute("data-state") !== "new") return;  // taken here: it stays this agent's
    alarmCard = null;
    stopTone();
    $("alarm-card").hidden = true;
    say($("bar-message"), message.reason === "taken" ? t("panel.alarm.taken_elsewhere") : t("panel.alarm.withdrawn"));
  }

  // An answer of the alarms API: the card follows the alarm as it now is.
  function alarmAnswer(result, done) {
    if (result.status === 200) {
      alarmCard.alarm = result.body;
      alarmState(result.body.state);
      say($("alarm-message"), done, "good");
    } else if (result.status === 409 && alarmCard.alarm.state === "new") {
      stopTone();
      say($("alarm-message"), t("panel.alarm.taken_elsewhere") + " " + errorText(result), "bad");
      $("alarm-take").disabled = true;
    } else {
      say($("alarm-message"), errorText(result), "bad");
    }
  }

  if ($("alarm-card")) {
    $("alarm-take").addEventListener("click", function () {
      if (!alarmCard) return;
      stopTone();
      $("alarm-take").disabled = true;
      alarmTaking = alarmCard.alarm.id;
      api("POST", "/alarms/" + alarmCard.alarm.id + "/take", { version: alarmCard.alarm.version })
        .then(function (result) {
          alarmTaking = null;
          alarmAnswer(result, t("panel.alarm.taken"));
        });
    });
    $("alarm-call").addEventListener("click", function () {
      if (!alarmCard) return;
      $("alarm-call").disabled = true;
      api("POST", "/alarms/" + alarmCard.alarm.id + "/call").then(function (result) {
        $("alarm-call").disabled = false;
        if (result.status === 201) {
          // The conference button now acts on this call: the elder's, placed from the card.
          alarmCard.callId = result.body.call_id;
          alarmState(alarmCard.alarm.state);
          say($("alarm-message"), t("panel.alarm.calling", { number: result.body.number }), "good");
        } else {
          say($("alarm-message"), errorText(result), "bad");
        }
      });
    });
    $("alarm-cascade").addEventListener("click", function () {
      if (!alarmCard) return;
      $("alarm-cascade").disabled = true;
      api("POST", "/cascades", { alarm_id: alarmCard.alarm.id }).then(function (result) {
        if (result.status === 201) {
          renderCascade(result.body);
          say($("alarm-message"), t("panel.cascade.started"), "good");
        } else {
          alarmState(alarmCard.alarm.state);
          say($("alarm-message"), errorText(result), "bad");
        }
      });
    });
    $("cascade-pause").addEventListener("click", function () { cascadeAction("pause"); });
    $("cascade-resume").addEventListener("click", function () { cascadeAction("resume"); });
    $("cascade-stop").addEventListener("click", function () { cascadeAction("stop"); });
    // 120, the community doctor, a relative or the social worker joins the elder and the agent on the card's call.
    $("alarm-conference").addEventListener("click", function () {
      if (!alarmCard || !alarmCard.callId || !$("conference")) return;
      conferenceCall = { id: alarmCard.callId, ended: false };
      conferenceAt("alarm");
      showConference();
      $("conference").scrollIntoView({ block: "nearest" });
    });
    $("alarm-resolve-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (!alarmCard) return;
      var chosen = document.querySelector("input[name='alarm-outcome']:checked");
      if (!chosen) return;
      var note = $("alarm-note").value.trim();
      $("alarm-resolve").disabled = true;
      api("POST", "/alarms/" + alarmCard.alarm.id + "/resolve",
        { version: alarmCard.alarm.version, outcome: chosen.value, note: note ? note : null })
        .then(function (result) {
          $("alarm-resolve").disabled = false;
          alarmAnswer(result, t("panel.alarm.resolved"));
        });
    });
    // Browsers start sound only after the user has interacted with the page: the first click allows it.
    document.addEventListener("click", function () {
      if (audioContext && audioContext.state === "suspended") audioContext.resume();
    });
  }

  // ---- Alarms past their answer target (supervisors, admins) -----------------------------------------------
  var overflowing = {};

  function renderOverflow() {
    var list = $("alarm-overflow-list");
    if (!list) return;
    clear(list);
    Object.keys(overflowing).forEach(function (id) {
      var alarm = overflowing[id].alarm;
      list.appendChild(el("li", t("panel.alarm.overflow_item", { type: label("panel.alarm_type", alarm.type),
        elder: alarm.elder_name || NONE, time: when(alarm.received_at) }) + " · " + alarm.number,
        { "data-alarm-id": String(alarm.id), "class": "severity-" + alarm.severity }));
    });
    $("alarm-overflow").hidden = list.childNodes.length === 0;
  }

  // ---- Live: pops, call ends, agent state on /ws (CC.live reconnects with backoff) -----------------------------
  function onMessage(message) {
    switch (message.type) {
      case "hello":
        // Whatever changed while disconnected (or before this page loaded) is read afresh; the distributor
        // sends the offer on this panel, and the overflowing alarms, again.
        overflowing = {};
        renderOverflow();
        loadAgentState();
        loadAgents();
        break;
      case "agent_state":
        if (message.username === config.username && config.agentBar) showAgentState(message);
        if (config.allAgents) { agents[message.username] = message; renderAgents(); }
        break;
      case "screen_pop":
        if (config.pops) showPop(message);
        break;
      case "call_ended":
        if (config.pops) endPop(message);
        break;
      case "alarm_offer":
        if (config.pops) showAlarm(message);
        break;
      case "alarm_withdrawn":
        if (config.pops) alarmWithdrawn(message);
        break;
      case "cascade":  // a responder called, a key pressed: the card reads the cascade again
        if (config.pops && alarmCard && message.cascade.alarm_id === alarmCard.alarm.id) loadCascade();
        break;
      case "alarm_overflow":
        if (config.alarmOverflow) { overflowing[message.alarm.id] = message; renderOverflow(); }
        break;
      case "alarm_overflow_ended":
        if (config.alarmOverflow) { delete overflowing[message.alarm_id]; renderOverflow(); }
        break;
      case "conference_roster":
        if (config.pops && conferenceCall && message.call_id === conferenceCall.id) renderRoster(message.participants);
        break;
      default:
        break;  // messages for features this page does not show
    }
  }

  loadAgentState();
  loadAgents();
  if (config.allAgents && !config.liveAgents) setInterval(loadAgents, 15000);  // auditors get no pushes
  CC.live(onMessage);
})();
