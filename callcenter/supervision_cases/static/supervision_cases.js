// Supervision cases (督办): the unresolved cases the scanner raised, then one case's details, urgings, and (for
// supervisors) the forms that record an urging and resolve it. Plain JavaScript, no build step; common.js
// (window.CC) is loaded first. Everything goes through /api/v1/supervision-cases.
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, errorText = CC.errorText, when = CC.when;
  var $ = function (id) { return document.getElementById(id); };
  var current = null;  // the case shown below the list

  // How long a case has been open (until it was resolved), in the largest whole unit.
  function age(item) {
    var end = item.resolved_at ? new Date(item.resolved_at) : new Date();
    var minutes = Math.max(0, Math.floor((end - new Date(item.opened_at)) / 60000));
    if (minutes < 60) return t("supervision_cases.age.minutes", { n: minutes });
    if (minutes < 48 * 60) return t("supervision_cases.age.hours", { n: Math.floor(minutes / 60) });
    return t("supervision_cases.age.days", { n: Math.floor(minutes / 1440) });
  }

  function load(event) {
    if (event) event.preventDefault();
    var status = $("f-status").value;
    var query = CC.query({ limit: 200, unresolved: status === "unresolved" ? "true" : null,
                           status: status === "unresolved" ? null : status, reason: $("f-reason").value });
    return api("GET", "/supervision-cases?" + query).then(function (result) {
      var body = $("cases-body");
      CC.clear(body);
      if (result.status !== 200) { say($("cases-message"), errorText(result), "bad"); return; }
      result.body.items.forEach(function (item) {
        var row = el("tr", null, { "data-case-id": String(item.id) });
        row.appendChild(el("td", item.number));
        row.appendChild(el("td", CC.label("supervision_cases.reason", item.reason)));
        row.appendChild(el("td", item.work_order_number || "—"));
        row.appendChild(el("td", item.provider_name || "—"));
        row.appendChild(el("td", item.elder_name || "—"));
        row.appendChild(el("td", age(item)));
        row.appendChild(el("td", CC.label("supervision_cases.status", item.status), { "class": "case-status" }));
        row.appendChild(el("td", item.urging_count));
        row.appendChild(CC.buttonCell(t("supervision_cases.open_case"), function () { show(item.id); }));
        body.appendChild(row);
      });
      $("cases-none").hidden = result.body.items.length > 0;
      say($("cases-message"), t("supervision_cases.found", { count: result.body.total }));
    });
  }

  function show(id) {
    return api("GET", "/supervision-cases/" + id).then(function (result) {
      if (result.status !== 200) { say($("cases-message"), errorText(result), "bad"); return; }
      render(result.body);
    });
  }

  function render(item) {
    current = item;
    var details = item.details || {};
    $("case").hidden = false;
    $("case-number").textContent = item.number;
    $("case-status").textContent = CC.label("supervision_cases.status", item.status);
    $("case-reason").textContent = CC.label("supervision_cases.reason", item.reason);
    $("case-summary").textContent = item.summary;
    $("case-order").textContent = item.work_order_number
      ? item.work_order_number + " (" + CC.label("common.order_status", item.work_order_status) + ")" : "—";
    $("case-provider").textContent = item.provider_name || "—";
    $("case-due").textContent = when(details.due_at);
    var ratings = [details.receipt_satisfaction, details.follow_up_satisfaction];
    $("case-ratings").textContent = ratings.some(function (r) { return r !== undefined && r !== null; })
      ? ratings.map(function (r) { return r === undefined || r === null ? "—" : r + "/5"; }).join(" / ") : "—";
    $("case-complaints").textContent = (details.orders || []).map(function (o) { return o.number; }).join("、")
      || "—";
    $("case-resolution").textContent = item.resolution || "—";
    var list = $("case-urgings");
    CC.clear(list);
    item.urgings.forEach(function (urging) {
      var text = when(urging.at) + " · " + urging.actor_label + " · "
        + CC.label("supervision_cases.method", urging.method) + (urging.message ? " · " + urging.message : "")
        + " → " + urging.result;
      list.appendChild(el("li", text));
    });
    $("case-no-urgings").hidden = item.urgings.length > 0;
    var resolved = item.status === "resolved";
    ["urge-form", "resolve-form"].forEach(function (id) { if ($(id)) $(id).hidden = resolved; });
  }

  function urge(event) {
    event.preventDefault();
    if (!current) return;
    var result = $("urge-result").value.trim();
    if (!result) {
      say($("case-message"), t("supervision_cases.result") + "?", "bad");
      $("urge-result").focus();
      return;
    }
    var body = { method: $("urge-method").value, result: result };
    var message = $("urge-message").value.trim();
    if (message) body.message = message;
    $("urge-submit").disabled = true;
    api("POST", "/supervision-cases/" + current.id + "/urgings", body).then(function (answer) {
      $("urge-submit").disabled = false;
      if (answer.status !== 201) { say($("case-message"), errorText(answer), "bad"); return; }
      $("urge-result").value = "";
      $("urge-message").value = "";
      say($("case-message"), t("supervision_cases.urged"), "good");
      show(current.id);
      load();
    });
  }

  function resolve(event) {
    event.preventDefault();
    if (!current) return;
    var resolution = $("resolution").value.trim();
    if (!resolution) {
      say($("case-message"), t("supervision_cases.resolution") + "?", "bad");
      $("resolution").focus();
      return;
    }
    $("resolve-submit").disabled = true;
    api("POST", "/supervision-cases/" + current.id + "/resolve", { resolution: resolution }).then(function (answer) {
      $("resolve-submit").disabled = false;
      if (answer.status !== 200) { say($("case-message"), errorText(answer), "bad"); return; }
      $("resolution").value = "";
      say($("case-message"), t("supervision_cases.resolved"), "good");
      render(answer.body);
      load();
    });
  }

  $("cases-filter").addEventListener("submit", load);
  $("f-status").addEventListener("change", load);
  $("f-reason").addEventListener("change", load);
  if ($("urge-form")) $("urge-form").addEventListener("submit", urge);
  if ($("resolve-form")) $("resolve-form").addEventListener("submit", resolve);
  load();
})();
