// The alarms page: every alarm (unresolved first, the most severe first, then the newest) with filters and paging,
// one alarm's details, and for supervisors and auditors how fast alarms were taken against TEC Quality's targets.
// Plain JavaScript, no build step; common.js (window.CC) is loaded first. Everything goes through /api/v1/alarms.
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, errorText = CC.errorText, when = CC.when, label = CC.label;
  var config = CC.config;
  var $ = function (id) { return document.getElementById(id); };
  var PAGE = 50;
  var offset = 0;

  // How long the alarm waited to be taken (still waiting: so far), in seconds or minutes.
  function waited(item) {
    var end = item.taken_at ? new Date(item.taken_at) : (item.state === "new" ? new Date() : null);
    if (!end) return "—";
    var seconds = Math.max(0, Math.round((end - new Date(item.received_at)) / 1000));
    var text = seconds < 120 ? t("alarms.seconds", { n: seconds })
      : t("alarms.minutes", { n: Math.round(seconds / 60) });
    return item.taken_at ? text : t("alarms.still_waiting", { time: text });
  }

  function load(event) {
    if (event) event.preventDefault();
    var query = CC.query({ state: $("f-state").value, type: $("f-type").value, limit: PAGE, offset: offset });
    return api("GET", "/alarms?" + query).then(function (result) {
      var body = $("alarm-body");
      CC.clear(body);
      if (result.status !== 200) { say($("alarm-list-message"), errorText(result), "bad"); return; }
      say($("alarm-list-message"), "");
      result.body.items.forEach(function (item) {
        var row = el("tr", null, { "data-alarm-id": String(item.id), "class": "severity-" + item.severity });
        row.appendChild(el("td", item.number));
        var type = label("alarms.type", item.type);
        row.appendChild(el("td", item.repeat_count ? type + " · " + t("alarms.repeats", { count: item.repeat_count })
          : type));
        row.appendChild(el("td", label("alarms.severity", item.severity)));
        row.appendChild(el("td", label("alarms.state", item.state), { "class": "alarm-state" }));
        row.appendChild(el("td", when(item.received_at)));
        row.appendChild(el("td", waited(item)));
        row.appendChild(el("td", item.taken_by || "—"));
        row.appendChild(el("td", label("alarms.outcome", item.outcome)));
        row.appendChild(CC.buttonCell(t("alarms.open"), function () { show(item.id); }));
        body.appendChild(row);
      });
      var total = result.body.total;
      $("alarm-none").hidden = total > 0;
      $("alarm-page-info").textContent = total > 0 ? t("alarms.page_info", {
        from: offset + 1, to: Math.min(offset + PAGE, total), total: total }) : "";
      $("alarm-prev").disabled = offset === 0;
      $("alarm-next").disabled = offset + PAGE >= total;
    });
  }

  function show(id) {
    return api("GET", "/alarms/" + id).then(function (result) {
      if (result.status !== 200) { say($("alarm-list-message"), errorText(result), "bad"); return; }
      var alarm = result.body;
      var fields = $("d-fields");
      CC.clear(fields);
      $("d-number").textContent = alarm.number;
      CC.addField(fields, t("alarms.type_heading"), label("alarms.type", alarm.type));
      CC.addField(fields, t("alarms.severity_heading"), label("alarms.severity", alarm.severity));
      CC.addField(fields, t("alarms.state_heading"), label("alarms.state", alarm.state));
      CC.addField(fields, t("alarms.source_heading"), label("alarms.source", alarm.source));
      CC.addField(fields, t("alarms.occurred"), when(alarm.occurred_at));
      CC.addField(fields, t("alarms.received"), when(alarm.received_at));
      CC.addField(fields, t("alarms.elder"), [alarm.elder_name, alarm.elder_address].filter(Boolean).join(" · "));
      CC.addField(fields, t("alarms.device"), [alarm.device_kind, alarm.device_serial_number].filter(Boolean)
        .join(" · "));
      var where = alarm.location;
      CC.addField(fields, t("alarms.where"), where ? where.lat + ", " + where.lon +
        (where.accuracy_m !== null && where.accuracy_m !== undefined
          ? " · " + t("alarms.accuracy", { metres: Math.round(where.accuracy_m) }) : "") +
        (where.source ? " · " + label("alarms.location_source", where.source) : "") : null);
      CC.addField(fields, t("alarms.work_order"), alarm.work_order_number);
      CC.addField(fields, t("alarms.taken_by"), alarm.taken_by ? alarm.taken_by + " · " + when(alarm.taken_at) : null);
      CC.addField(fields, t("alarms.resolved_by"),
        alarm.resolved_by ? alarm.resolved_by + " · " + when(alarm.resolved_at) : null);
      CC.addField(fields, t("alarms.outcome_heading"), label("alarms.outcome", alarm.outcome));
      CC.addField(fields, t("alarms.outcome_note"), alarm.outcome_note);
      var payload = $("d-payload");
      CC.clear(payload);
      var keys = Object.keys(alarm.payload || {});
      keys.forEach(function (key) {
        var value = alarm.payload[key];
        CC.addField(payload, key, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value));
      });
      if (!keys.length) CC.addField(payload, t("alarms.no_details"), null);
      $("alarm-detail").hidden = false;
    });
  }

  function percent(share) {
    if (share.percent === null) return "—";
    var text = share.percent.toFixed(1) + " % (" + share.within + "/" + share.judged + ")";
    return text + " " + (share.met ? t("alarms.figures.met") : t("alarms.figures.missed"));
  }

  function figureRow(line) {
    var row = el("tr", null, { "data-type": line.type || "total" });
    row.appendChild(el("td", line.type ? label("alarms.type", line.type) : t("alarms.figures.total")));
    row.appendChild(el("td", String(line.alarms)));
    row.appendChild(el("td", String(line.answered)));
    row.appendChild(el("td", String(line.overflowed)));
    line.targets.forEach(function (share) {
      row.appendChild(el("td", percent(share), { "class": share.met === false ? "alert" : "" }));
    });
    row.appendChild(el("td", line.longest_seconds === null ? "—"
      : t("alarms.seconds", { n: Math.round(line.longest_seconds) })));
    return row;
  }

  function loadFigures() {
    if (!$("answer-times")) return null;
    var since = new Date(Date.now() - Number($("f-days").value) * 86400000).toISOString();
    return api("GET", "/alarms/answer-times?" + CC.query({ from: since })).then(function (result) {
      var body = $("figures-body");
      CC.clear(body);
      if (result.status !== 200) { say($("figures-message"), errorText(result), "bad"); return; }
      say($("figures-message"), result.body.types.length ? "" : t("alarms.figures.none"));
      result.body.types.forEach(function (line) { body.appendChild(figureRow(line)); });
      body.appendChild(figureRow(result.body.total));
    });
  }

  $("alarm-filter").addEventListener("submit", function (event) { offset = 0; load(event); });
  $("alarm-prev").addEventListener("click", function () { offset = Math.max(0, offset - PAGE); load(); });
  $("alarm-next").addEventListener("click", function () { offset += PAGE; load(); });
  if ($("f-days")) $("f-days").addEventListener("change", loadFigures);
  if (config.mayReadFigures) loadFigures();
  load();
})();
