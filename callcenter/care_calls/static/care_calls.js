// Care calls (关爱电话): a day's check-ins and greetings with their outcomes, the exceptions first (a call back
// asked for, a spoken answer without a key, a missed check-in and its emergency order), the one-click call back
// (your phone rings first) and "dealt with"; supervisors may enable daily check-ins for every elder living alone.
// Plain JavaScript, no build step; common.js (window.CC) is loaded first. Everything goes through /api/v1.
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, errorText = CC.errorText, when = CC.when;
  var $ = function (id) { return document.getElementById(id); };
  var current = null;  // the exception being dealt with

  function kindText(item) {
    if (item.kind === "check_in") return t("care_calls.kind.check_in");
    var occasions = (item.occasion || "").split(",").map(function (o) { return CC.label("care_calls.occasion", o); });
    return t("care_calls.kind.greeting") + " · " + occasions.join("、");
  }

  function load(event) {
    if (event) event.preventDefault();
    var date = $("f-date").value;
    return api("GET", "/care-calls?" + CC.query({ date: date || null })).then(function (result) {
      var body = $("care-body");
      CC.clear(body);
      if (result.status !== 200) { say($("care-message"), errorText(result), "bad"); return; }
      var only = $("f-exceptions").checked;
      var items = result.body.items.filter(function (item) { return !only || item.exception; });
      items.forEach(function (item) {
        var row = el("tr", null, { "data-record-id": String(item.record_id || ""),
                                   "data-schedule-id": String(item.schedule_id || ""),
                                   "class": item.exception ? "exception" : "" });
        row.appendChild(el("td", item.elder_name));
        row.appendChild(el("td", kindText(item)));
        row.appendChild(el("td", item.window_start + "–" + item.window_end));
        row.appendChild(el("td", CC.label("care_calls.outcome", item.outcome), { "class": "care-outcome" }));
        row.appendChild(el("td", String(item.attempts)));
        row.appendChild(el("td", item.work_order_number || "—"));
        row.appendChild(el("td", item.handled_by ? item.handled_by + " · " + when(item.handled_at) + " · "
                                 + (item.handling_note || "") : "—", { "class": "care-handled" }));
        var actions = el("td");
        if (CC.config.mayWrite && item.record_id && item.outcome !== "planned") {
          actions.appendChild(button(t("care_calls.call"), "care-call", function () { call(item); }));
        }
        if (CC.config.mayWrite && item.exception) {
          actions.appendChild(button(t("care_calls.deal"), "care-deal", function () { open(item); }));
        }
        row.appendChild(actions);
        body.appendChild(row);
      });
      $("care-none").hidden = items.length > 0;
      var counts = result.body.counts;
      $("care-counts").textContent = Object.keys(counts).sort().map(function (outcome) {
        return CC.label("care_calls.outcome", outcome) + " " + counts[outcome];
      }).join(" · ");
    });
  }

  function button(text, cls, onClick) {
    var node = el("button", text, { type: "button", "class": "secondary small " + cls });
    node.addEventListener("click", onClick);
    return node;
  }

  function call(item) {
    api("POST", "/care-records/" + item.record_id + "/call").then(function (answer) {
      if (answer.status !== 201) { say($("care-message"), errorText(answer), "bad"); return; }
      say($("care-message"), t("care_calls.ringing", { extension: answer.body.extension }), "good");
    });
  }

  function open(item) {
    current = item;
    $("handle").hidden = false;
    $("handle-elder").textContent = item.elder_name + " · " + CC.label("care_calls.outcome", item.outcome);
    $("handle-note").value = "";
    say($("handle-message"), "");
    $("handle-note").focus();
  }

  function handle(event) {
    event.preventDefault();
    if (!current) return;
    var note = $("handle-note").value.trim();
    if (!note) {
      say($("handle-message"), t("care_calls.note") + "?", "bad");
      $("handle-note").focus();
      return;
    }
    $("handle-submit").disabled = true;
    api("POST", "/care-records/" + current.record_id + "/handle", { note: note }).then(function (answer) {
      $("handle-submit").disabled = false;
      if (answer.status !== 200) { say($("handle-message"), errorText(answer), "bad"); return; }
      say($("handle-message"), t("care_calls.handled_done"), "good");
      $("handle").hidden = true;
      current = null;
      load();
    });
  }

  function enable(event) {
    event.preventDefault();
    $("enable-submit").disabled = true;
    var body = { window_start: $("enable-start").value, window_end: $("enable-end").value };
    api("POST", "/care-schedules/enable-living-alone", body).then(function (answer) {
      $("enable-submit").disabled = false;
      if (answer.status !== 200) { say($("enable-message"), errorText(answer), "bad"); return; }
      say($("enable-message"), t("care_calls.enabled", { created: answer.body.created,
                                                         skipped: answer.body.without_phone.length }), "good");
      load();
    });
  }

  $("care-filter").addEventListener("submit", load);
  $("f-date").addEventListener("change", load);
  $("f-exceptions").addEventListener("change", load);
  if ($("handle-form")) $("handle-form").addEventListener("submit", handle);
  if ($("enable-form")) $("enable-form").addEventListener("submit", enable);
  load();
})();
