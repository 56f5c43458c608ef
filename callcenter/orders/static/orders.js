// The centre's work-order workspace (/orders): the list with filters, one order with its trail and a button for
// exactly each step the API says the user may take now (allowed_actions), the follow-up queue with one-click call
// back (回访), and the intake form. Every change sends the version read: a 409 reloads the order and says someone
// else changed it; a 422 shows the API's message at the field it names. Talks only to the REST API (window.CC).
(function () {
  "use strict";

  var CC = window.CC;
  var t = CC.t, el = CC.el, clear = CC.clear, api = CC.api, label = CC.label;
  var $ = function (id) { return document.getElementById(id); };

  var current = null;      // the order on screen, as last read
  var pendingAction = null;
  var lastCall = {};       // order id -> the follow-up call just placed (its call_id goes with the follow-up)

  // What each step asks for. [name (dotted: nested in the body), input kind, required]
  var REASON = [["reason", "textarea", true]];
  var RECEIPT = [["receipt.summary", "textarea", true], ["receipt.result", "result", true],
                 ["receipt.duration_minutes", "minutes", true], ["receipt.satisfaction", "score", true],
                 ["receipt.notes", "textarea", false]];
  var FIELDS = {
    submit: [], accept: [], approve_receipt: [],
    "return": REASON, decline: REASON, cancel: REASON, reject_receipt: REASON, reopen: REASON,
    investigate: [["reason", "textarea", false]],
    dispatch: [["provider_id", "provider", true]],
    assign: [["staff_id", "staff", true]],
    start: [["staff_id", "staff", false]],
    finish: RECEIPT,
    record_follow_up: [["follow_up.satisfaction", "score", true], ["follow_up.comments", "textarea", false],
                       ["follow_up.solved", "checkbox", false]],
    close: [["outcome", "textarea", false], ["founded", "founded", false]],
    answer: [["answer", "textarea", true]],
    add_evidence: [["evidence", "textarea", true]],
    propose_resolution: [["proposed_resolution", "textarea", true]],
    contact_complainant: [["complainant_response", "textarea", true]]
  };

  var when = CC.when, problem = CC.errorText, field = CC.addField;

  function say(id, text, good) { CC.say($(id), text, text ? (good ? "good" : "bad") : ""); }

  // --- tabs ---------------------------------------------------------------------------------------------------
  function showTab(name) {
    document.querySelectorAll(".tab").forEach(function (tab) {
      tab.setAttribute("aria-pressed", tab.dataset.tab === name ? "true" : "false");
    });
    document.querySelectorAll(".pane").forEach(function (pane) { pane.hidden = pane.id !== "pane-" + name; });
    if (name === "list") loadList();
    if (name === "follow-ups") loadFollowUps();
  }

  // --- the list -----------------------------------------------------------------------------------------------
  function loadList() {
    var query = CC.query({ limit: 100, status: $("f-status").value, kind: $("f-kind").value });
    return api("GET", "/work-orders?" + query).then(function (response) {
      var body = $("orders-body");
      clear(body);
      if (response.status !== 200) { say("orders-message", problem(response)); return; }
      say("orders-message", "");
      response.body.items.forEach(function (order) {
        var row = el("tr", null, { "data-order-id": String(order.id) });
        row.appendChild(el("td", order.number));
        row.appendChild(el("td", label("common.order_kind", order.kind)));
        row.appendChild(el("td", label("common.order_status", order.status)));
        row.appendChild(el("td", order.title));
        row.appendChild(el("td", order.priority));
        row.appendChild(el("td", when(order.due_at)));
        row.appendChild(CC.buttonCell(t("orders.open"), function () { openOrder(order.id); },
                                      { "class": "secondary open-order" }));
        body.appendChild(row);
      });
      $("orders-none").hidden = response.body.items.length > 0;
    });
  }

  // --- the follow-up queue ------------------------------------------------------------------------------------
  function loadFollowUps() {
    return api("GET", "/follow-ups").then(function (response) {
      var body = $("follow-ups-body");
      clear(body);
      if (response.status !== 200) { say("follow-ups-message", problem(response)); return; }
      say("follow-ups-message", "");
      response.body.items.forEach(function (item) {
        var order = item.order;
        var row = el("tr", null, { "data-order-id": String(order.id) });
        row.appendChild(el("td", order.number));
        row.appendChild(el("td", item.elder ? item.elder.full_name : "—"));
        row.appendChild(el("td", item.elder && item.elder.phone ? item.elder.phone : "—"));
        var receipt = item.receipt || {};
        row.appendChild(el("td", receipt.summary ? receipt.summary + " · " + label("orders.result", receipt.result)
          : "—"));
        row.appendChild(el("td", when(item.waiting_since)));
        var cell = el("td", null, { "class": "row" });
        var dial = el("button", t("orders.call_back"), { type: "button", "class": "call-back" });
        dial.addEventListener("click", function () { callBack(order.id, dial); });
        var record = el("button", t("orders.record_follow_up"),
          { type: "button", "class": "secondary record-follow-up" });
        record.addEventListener("click", function () {
          openOrder(order.id).then(function () { startAction("record_follow_up"); });
        });
        cell.appendChild(dial);
        cell.appendChild(record);
        row.appendChild(cell);
        body.appendChild(row);
      });
      $("follow-ups-none").hidden = response.body.items.length > 0;
    });
  }

  // One click: the agent's own phone rings; once answered the elder is dialled. Then the follow-up form.
  function callBack(orderId, button) {
    button.disabled = true;
    say("follow-ups-message", t("orders.calling"), true);
    return api("POST", "/work-orders/" + orderId + "/follow-up-call").then(function (response) {
      button.disabled = false;
      if (response.status !== 201) { say("follow-ups-message", problem(response)); return; }
      lastCall[orderId] = response.body;
      say("follow-ups-message", t("orders.ringing", { extension: response.body.extension,
                                                   number: response.body.number }), true);
      return openOrder(orderId).then(function () { startAction("record_follow_up"); });
    });
  }

  // --- one order ----------------------------------------------------------------------------------------------
  function openOrder(orderId) {
    return api("GET", "/work-orders/" + orderId).then(function (response) {
      if (response.status !== 200) { say("order-message", problem(response)); return; }
      show(response.body);
      $("order").hidden = false;
    });
  }

  // The detail carries ids; the trail named the provider (dispatch) and the staff member (assign) when chosen.
  function named(events, what, id) {
    if (id === null || id === undefined) return null;
    for (var i = events.length - 1; i >= 0; i--) {
      var d = events[i].details || {};
      if (d[what + "_id"] === id && d[what]) return d[what];
    }
    return "#" + id;
  }

  function show(order) {
    current = order;
    $("order").dataset.orderId = String(order.id);
    $("order").dataset.version = String(order.version);
    $("order-number").textContent = order.number;
    $("order-status").textContent = label("common.order_status", order.status);
    $("order-status").dataset.status = order.status;
    var list = $("order-fields");
    clear(list);
    field(list, t("orders.kind"), label("common.order_kind", order.kind));
    field(list, t("orders.subject"), order.title);
    field(list, t("orders.description"), order.description);
    field(list, t("common.order.service"), order.service ? label("common.service", order.service) : null);
    field(list, t("orders.elder"), order.elder ? order.elder.full_name + " · " + (order.elder.phone || "—") +
          (order.elder.address ? " · " + order.elder.address : "") : null);
    field(list, t("common.order.provider"), named(order.events, "provider", order.provider_id));
    field(list, t("orders.staff"), named(order.events, "staff", order.staff_id));
    field(list, t("orders.due"), when(order.due_at));
    if (order.receipt) {
      field(list, t("orders.receipt"), order.receipt.summary + " · " + label("orders.result", order.receipt.result) +
            " · " + t("orders.minutes", { n: order.receipt.duration_minutes }) + " · " +
            t("orders.satisfaction_n", { n: order.receipt.satisfaction }));
    }
    if (order.follow_up) {
      field(list, t("orders.follow_up"), t("orders.satisfaction_n", { n: order.follow_up.satisfaction }) + " · " +
            (order.follow_up.solved ? t("orders.solved") : t("orders.not_solved")) +
            (order.follow_up.comments ? " · " + order.follow_up.comments : ""));
    }
    if (order.complaint) {
      var c = order.complaint;
      field(list, t("orders.complaint_source"), label("orders.source", c.source) +
            (c.external_deadline ? " · " + t("orders.external_deadline") + " " + when(c.external_deadline) : ""));
      if (c.evidence && c.evidence.length) {
        field(list, t("orders.evidence"), c.evidence.map(function (e) { return e.text; }).join(" / "));
      }
      field(list, t("orders.proposed_resolution"), c.proposed_resolution);
      field(list, t("orders.complainant_response"), c.complainant_response);
      if (c.founded !== null) field(list, t("orders.founded"), c.founded ? t("orders.yes") : t("orders.no"));
    }
    field(list, t("orders.resolution"), order.resolution);
    showActions(order);
    showTrail(order.events);
    loadCascade(order);
  }

  // --- the contact cascade of an emergency order (callcenter/cascades) ----------------------------------------
  var cascade = null;

  function loadCascade(order) {
    cascade = null;
    $("order-cascade").hidden = order.kind !== "emergency" || !order.elder;
    if ($("order-cascade").hidden) return null;
    return api("GET", "/cascades?work_order_id=" + order.id + "&limit=1").then(function (response) {
      if (!current || current.id !== order.id) return;
      showCascade(response.status === 200 ? response.body.items[0] || null : null);
    });
  }

  function showCascade(found) {
    cascade = found;
    var state = found ? found.state : null, open = state === "running" || state === "paused";
    $("order-cascade-state").textContent = found ? label("orders.cascade_state", state) : t("orders.cascade.none");
    $("order-cascade").dataset.state = state || "";
    var calls = $("order-cascade-calls");
    clear(calls);
    (found ? found.calls : []).forEach(function (call) {
      var parts = [call.name, label("orders.cascade_call", call.state)];
      if (call.key) parts.push(t("orders.cascade.key", { key: call.key }) + " " + when(call.key_at));
      calls.appendChild(el("li", parts.join(" · "), { "data-state": call.state }));
    });
    if (state === "accepted") {
      calls.appendChild(el("li", t("orders.cascade.accepted", { name: found.accepted_by, minutes: found.eta_minutes }),
                           { "class": "good" }));
    }
    var closed = current.status === "closed" || current.status === "cancelled";
    $("order-cascade-start").hidden = open || closed;
    $("order-cascade-pause").hidden = state !== "running";
    $("order-cascade-resume").hidden = state !== "paused";
    $("order-cascade-stop").hidden = !open;
  }

  function cascadeStep(path, body) {
    api("POST", path, body).then(function (response) {
      if (response.status === 200 || response.status === 201) {
        showCascade(response.body);
        openOrder(current.id);  // the trail has the step
      } else {
        say("order-message", problem(response));
      }
    });
  }

  $("order-cascade-start").addEventListener("click", function () {
    cascadeStep("/cascades", { work_order_id: current.id });
  });
  ["pause", "resume", "stop"].forEach(function (action) {
    $("order-cascade-" + action).addEventListener("click", function () {
      if (cascade) cascadeStep("/cascades/" + cascade.id + "/" + action);
    });
  });

  function showActions(order) {
    var box = $("order-actions");
    clear(box);
    hideAction();
    order.allowed_actions.forEach(function (action) {
      var button = el("button", label("orders.action", action), { type: "button", "data-action": action,
                                                               id: "act-" + action });
      button.addEventListener("click", function () { startAction(action); });
      box.appendChild(button);
    });
    $("order-no-actions").hidden = order.allowed_actions.length > 0;
  }

  function describe(event) {
    var d = event.details || {};
    var parts = [];
    ["reason", "provider", "staff", "outcome", "answer", "evidence", "proposed_resolution", "complainant_response",
     "number", "dial_status"].forEach(function (key) {
      var value = d[key];
      if (value && typeof value === "object") value = value.text || JSON.stringify(value);
      if (value !== undefined && value !== null && value !== "") parts.push(value);
    });
    if (d.matched) parts.push(label("common.match", d.matched));
    if (d.receipt) parts.push(d.receipt.summary);
    if (d.follow_up) {
      parts.push(t("orders.satisfaction_n", { n: d.follow_up.satisfaction }) + " · " +
                 (d.follow_up.solved ? t("orders.solved") : t("orders.not_solved")));
    }
    return parts.join(" · ");
  }

  function showTrail(events) {
    var body = $("trail-body");
    clear(body);
    events.forEach(function (event) {
      var row = el("tr", null, { "data-action": event.action });
      row.appendChild(el("td", when(event.at)));
      row.appendChild(el("td", event.actor_label));
      row.appendChild(el("td", label("orders.event", event.action)));
      row.appendChild(el("td", event.from_status && event.to_status && event.from_status !== event.to_status
        ? label("common.order_status", event.from_status) + " → " + label("common.order_status", event.to_status)
        : ""));
      row.appendChild(el("td", event.call_id ? t("orders.call_n", { id: event.call_id }) : ""));
      row.appendChild(el("td", describe(event)));
      body.appendChild(row);
    });
  }

  // --- a step's form ------------------------------------------------------------------------------------------
  function hideAction() {
    pendingAction = null;
    $("action-form").hidden = true;
    clear($("action-fields"));
  }

  function input(kind, name, required) {
    var id = "act-f-" + name.replace(/\./g, "-");
    var node;
    if (kind === "textarea") {
      node = el("textarea", null, { rows: "2", maxlength: "4000" });
    } else if (kind === "score") {
      node = el("select");
      [5, 4, 3, 2, 1].forEach(function (n) {
        node.appendChild(el("option", t("orders.score." + n), { value: String(n) }));
      });
    } else if (kind === "result") {
      node = el("select");
      ["completed", "partial", "not_done"].forEach(function (r) {
        node.appendChild(el("option", label("orders.result", r), { value: r }));
      });
    } else if (kind === "minutes") {
      node = el("input", null, { type: "number", min: "1", max: "1440", step: "1" });
    } else if (kind === "checkbox" || kind === "founded") {
      node = el("input", null, { type: "checkbox" });
    } else {  // provider, staff
      node = el("select");
    }
    node.id = id;
    node.name = name;
    node.dataset.kind = kind;
    if (required) node.required = true;
    return node;
  }

  function startAction(action) {
    if (!current || current.allowed_actions.indexOf(action) < 0) return;
    pendingAction = action;
    var box = $("action-fields");
    clear(box);
    $("action-heading").textContent = label("orders.action", action);
    (FIELDS[action] || []).forEach(function (spec) {
      var name = spec[0], kind = spec[1], required = spec[2];
      if (kind === "founded" && current.kind !== "complaint") return;
      // A complaint, and an emergency handled on the call, close with their outcome; after a follow-up it is optional.
      if (action === "close" && name === "outcome" && current.status !== "follow_up") required = true;
      var node = input(kind, name, required);
      var wrap = el("div", null, { "class": kind === "checkbox" || kind === "founded" ? "check" : "" });
      var caption = el("label", t("orders.field." + name) + (required ? " *" : ""), { "for": node.id });
      if (kind === "checkbox" || kind === "founded") { wrap.appendChild(node); wrap.appendChild(caption); }
      else { wrap.appendChild(caption); wrap.appendChild(node); }
      wrap.appendChild(el("span", null, { "class": "field-error", "data-for": name }));
      box.appendChild(wrap);
      if (kind === "provider") loadProviders(node);
      if (kind === "staff") loadStaff(node, required);
    });
    if (action === "record_follow_up" && lastCall[current.id]) {
      box.appendChild(el("p", t("orders.with_call", { id: lastCall[current.id].call_id }), { "class": "muted",
                                                                                       id: "act-call" }));
    }
    $("action-form").hidden = false;
    var first = box.querySelector("input, select, textarea");
    (first || $("action-submit")).focus();
  }

  // The dispatch choice: GET /providers/suggestions for the order's service and elder, each with its reason.
  function loadProviders(select) {
    if (!current.service) {
      select.appendChild(el("option", t("common.order.provider_needs_service"), { value: "" }));
      return;
    }
    var path = "/providers/suggestions?service=" + encodeURIComponent(current.service) +
      (current.elder_id ? "&elder_id=" + current.elder_id : "");
    select.appendChild(el("option", t("orders.best_match"), { value: "" }));
    api("GET", path).then(function (response) {
      if (response.status !== 200) { say("order-message", problem(response)); return; }
      if (!response.body.items.length) {
        select.appendChild(el("option", t("common.order.provider_no_match"), { value: "" }));
      }
      response.body.items.forEach(function (item) {
        var text = item.provider.name + " · " + label("common.match", item.reason) +
          (item.distance_km !== null ? " · " + item.distance_km.toFixed(1) + " km" : "") +
          (item.rating !== null ? " · ★" + item.rating : "") + " · " + t("orders.load", { n: item.load });
        select.appendChild(el("option", text, { value: String(item.provider.id), "data-reason": item.reason }));
      });
    });
  }

  function loadStaff(select, required) {
    select.appendChild(el("option", required ? t("orders.choose") : t("orders.staff_keep"), { value: "" }));
    if (!current.provider_id) return;
    api("GET", "/providers/" + current.provider_id + "/staff").then(function (response) {
      if (response.status !== 200) return;
      response.body.items.filter(function (s) { return s.active; }).forEach(function (staff) {
        select.appendChild(el("option", staff.name, { value: String(staff.id) }));
      });
    });
  }

  function put(body, name, value) {
    var path = name.split(".");
    var node = body;
    for (var i = 0; i < path.length - 1; i++) node = node[path[i]] = node[path[i]] || {};
    node[path[path.length - 1]] = value;
  }

  function fieldErrors(form, error) {
    form.querySelectorAll(".field-error").forEach(function (span) { span.textContent = ""; });
    if (!error) return;
    CC.errorItems(error).forEach(function (detail) {
      if (!detail.field) return;
      var span = form.querySelector('.field-error[data-for="' + detail.field + '"]') ||
        form.querySelector('.field-error[data-for="' + detail.field.split(".")[0] + '"]');
      if (span) span.textContent = detail.message;
    });
  }

  function submitAction(event) {
    event.preventDefault();
    if (!current || !pendingAction) return;
    var action = pendingAction;
    var body = { action: action, version: current.version };
    var form = $("action-form");
    var missing = false;
    fieldErrors(form, null);
    form.querySelectorAll("[name]").forEach(function (node) {
      var kind = node.dataset.kind;
      var value;
      if (kind === "checkbox" || kind === "founded") value = node.checked;
      else if (kind === "score" || kind === "minutes" || kind === "provider" || kind === "staff") {
        value = node.value === "" ? null : Number(node.value);
      } else value = node.value.trim() === "" ? null : node.value.trim();
      if (node.required && value === null) {
        missing = true;
        form.querySelector('.field-error[data-for="' + node.name + '"]').textContent = t("orders.required");
      }
      if (value !== null) put(body, node.name, value);
    });
    if (missing) return;
    var call = lastCall[current.id];
    if (action === "record_follow_up" && call) {
      body.call_id = call.call_id;
      body.follow_up.call_id = call.call_id;
    }
    $("action-submit").disabled = true;
    api("POST", "/work-orders/" + current.id + "/actions", body).then(function (response) {
      $("action-submit").disabled = false;
      if (response.status === 200) {
        if (action === "close" || action === "record_follow_up") delete lastCall[current.id];
        show(response.body);
        say("order-message", t("orders.done", { action: label("orders.action", action) }), true);
        refreshLists();
      } else if (response.status === 409) {
        var stale = response.body && response.body.error && response.body.error.code === "stale_version";
        openOrder(current.id).then(function () {
          say("order-message", stale ? t("orders.stale") : problem(response));
        });
        refreshLists();
      } else {
        fieldErrors(form, response.body && response.body.error);
        say("order-message", problem(response));
      }
    });
  }

  function refreshLists() {
    if (!$("pane-list").hidden) loadList();
    if (!$("pane-follow-ups").hidden) loadFollowUps();
  }

  // --- intake -------------------------------------------------------------------------------------------------
  function kindChanged() {
    var kind = $("new-kind").value;
    document.querySelectorAll(".kind-only").forEach(function (box) {
      box.hidden = box.dataset.kinds.split(" ").indexOf(kind) < 0;
    });
  }

  function searchElders() {
    var q = $("new-elder-q").value.trim();
    if (!q) return;
    var byPhone = /^[0-9 +()-]+$/.test(q);
    api("GET", "/elders?limit=20&" + (byPhone ? "phone=" : "q=") + encodeURIComponent(q)).then(function (response) {
      var select = $("new-elder");
      clear(select);
      select.appendChild(el("option", t("orders.elder_none"), { value: "" }));
      if (response.status !== 200) { say("new-message", problem(response)); return; }
      response.body.items.forEach(function (elder) {
        // Summaries: the phone number is masked (139****9000), enough to tell two namesakes apart.
        select.appendChild(el("option", elder.full_name + " · " + (elder.phone_masked || "—") + " · " +
                              (elder.community || ""), { value: String(elder.id) }));
      });
      if (response.body.items.length) select.selectedIndex = 1;
      say("new-message", response.body.items.length ? "" : t("orders.elder_not_found"));
    });
  }

  function submitNew(event) {
    event.preventDefault();
    var form = $("new-order");
    var kind = $("new-kind").value;
    var body = { kind: kind };
    var value = function (id) { var v = $(id).value.trim(); return v === "" ? null : v; };
    if (value("new-elder")) body.elder_id = Number(value("new-elder"));
    if (value("new-title")) body.title = value("new-title");
    if (value("new-description")) body.description = value("new-description");
    if (["service_request", "device_fault", "emergency"].indexOf(kind) >= 0 && value("new-service")) {
      body.service = value("new-service");
    }
    if (kind === "consultation" && value("new-answer")) body.answer = value("new-answer");
    if (kind === "complaint") {
      body.complaint = { source: $("new-complaint-source").value };
      if (value("new-complaint-deadline")) {
        body.complaint.external_deadline = new Date(value("new-complaint-deadline")).toISOString();
      }
      if (value("new-complaint-reference")) body.complaint.external_reference = value("new-complaint-reference");
    }
    $("new-submit").disabled = true;
    api("POST", "/work-orders", body).then(function (response) {
      $("new-submit").disabled = false;
      fieldErrors(form, response.status === 201 ? null : response.body && response.body.error);
      if (response.status !== 201) { say("new-message", problem(response)); return; }
      form.reset();
      kindChanged();
      say("new-message", t("orders.created", { number: response.body.number }), true);
      show(response.body);
      $("order").hidden = false;
    });
  }

  // --- wiring -------------------------------------------------------------------------------------------------
  document.querySelectorAll(".tab").forEach(function (tab) {
    tab.addEventListener("click", function () { showTab(tab.dataset.tab); });
  });
  $("orders-filter").addEventListener("submit", function (event) { event.preventDefault(); loadList(); });
  $("action-form").addEventListener("submit", submitAction);
  $("action-cancel").addEventListener("click", hideAction);
  $("new-kind").addEventListener("change", kindChanged);
  $("new-elder-search").addEventListener("click", searchElders);
  $("new-elder-q").addEventListener("keydown", function (event) {
    if (event.key === "Enter") { event.preventDefault(); searchElders(); }
  });
  $("new-order").addEventListener("submit", submitNew);
  kindChanged();
  var wanted = new URLSearchParams(window.location.search);
  showTab(wanted.get("tab") === "follow-ups" ? "follow-ups" : "list");
  if (/^[0-9]+$/.test(wanted.get("order") || "")) openOrder(Number(wanted.get("order")));
})();
