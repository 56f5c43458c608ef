// The elder's health readings on the elder's file (the readings domain's section of the elders page): the latest of
// each type, a uPlot trend chart per type with the elder's limits drawn across it, hand entry and the elder's own
// limits. It follows the file the elders page shows ("cc:elder-opened" / "cc:elder-closed") and reads only what
// the API gives this account (/api/v1/elders/{id}/readings and /thresholds: the API audits every read). Times are
// shown, charted and typed in the centre's time zone (config.sections.health_trends.timezone), whatever the
// browser's.
/* global uPlot */
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, errorText = CC.errorText;
  var own = CC.config.sections.health_trends;
  var zone = own.timezone;
  var $ = function (id) { return document.getElementById(id); };
  var DAY = 86400;
  var FETCH_DAYS = 90;  // one read (and one audit entry) per opening; the range chosen only narrows what is shown
  var FETCH_LIMIT = 5000;
  var TYPES = own.types;
  var LIMITS = ["critical_low", "high_low", "target_high", "high_high", "critical_high"];
  var LIMIT_COLOURS = { critical_low: "#b91c1c", high_low: "#d97706", target_high: "#15803d", high_high: "#d97706",
                        critical_high: "#b91c1c" };
  var SERIES_COLOURS = ["#1d4ed8", "#7c3aed"];
  var elder = null;  // the file shown (as the API gave it), null when none is
  var readings = [];  // its readings of the last FETCH_DAYS days, newest first
  var limits = [];  // its limits, each measure's (GET …/thresholds)
  var charts = [];  // the uPlot instances on screen (destroyed before new ones are drawn)
  var newest = 0;  // only the newest opening's answers are shown

  // ---- times in the centre's zone -------------------------------------------------------------------------

  var WALL = new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric",
                                                month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
                                                second: "2-digit" });
  var SHOWN = new Intl.DateTimeFormat(CC.config.lang, { timeZone: zone, year: "numeric", month: "2-digit",
                                                        day: "2-digit", hour: "2-digit", minute: "2-digit" });

  function wallClock(ms) {
    var parts = {};
    WALL.formatToParts(new Date(ms)).forEach(function (part) { parts[part.type] = part.value; });
    return parts;
  }

  // How far the centre's clock is ahead of UTC at the instant ``ms``, in minutes.
  function offsetAt(ms) {
    var p = wallClock(ms);
    var asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
  }

  function shownTime(iso) { return iso ? SHOWN.format(new Date(iso)) : "—"; }

  // A datetime-local input's value for the instant ``ms`` on the centre's clock.
  function inputValue(ms) {
    var p = wallClock(ms);
    return p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute;
  }

  // What was typed in a datetime-local input, read on the centre's clock, as ISO 8601 with its offset; anything
  // else as typed (null when empty), for the API to name.
  function typedInstant(value) {
    var match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value);
    if (!match) return CC.orNull(value);
    var wall = Date.UTC(+match[1], +match[2] - 1, +match[3], +match[4], +match[5]);
    var offset = offsetAt(wall - offsetAt(wall) * 60000);
    var sign = offset < 0 ? "-" : "+";
    var minutes = Math.abs(offset);
    return value + ":00" + sign + String(Math.floor(minutes / 60)).padStart(2, "0") + ":"
      + String(minutes % 60).padStart(2, "0");
  }

  // ---- showing the file's readings ------------------------------------------------------------------------

  function valueText(reading) {
    var text = t("health_trends.reading." + reading.type, reading.values);
    if (reading.values.pulse_bpm !== undefined) text += " · " + t("health_trends.pulse", reading.values);
    if (reading.values.context) text += " · " + CC.label("health_trends.context", reading.values.context);
    if (reading.values.site) text += " · " + CC.label("health_trends.site", reading.values.site);
    return text;
  }

  function showLatest(types) {
    var body = $("ht-latest-body");
    CC.clear(body);
    types.forEach(function (type) {
      var latest = readings.filter(function (reading) { return reading.type === type; })[0];
      var row = el("tr", null, { "data-type": type });
      row.appendChild(el("td", CC.label("health_trends.type", type)));
      row.appendChild(el("td", valueText(latest)));
      row.appendChild(el("td", shownTime(latest.measured_at)));
      row.appendChild(el("td", CC.label("health_trends.source", latest.source)
        + (latest.entered_by ? " · " + latest.entered_by : "")));
      row.appendChild(el("td", t(latest.alarm_id ? "health_trends.out_of_range" : "health_trends.in_range"),
                         { "class": latest.alarm_id ? "ht-out" : "" }));
      body.appendChild(row);
    });
    $("ht-latest").hidden = types.length === 0;
  }

  function limitsOf(type, measure) {
    return limits.filter(function (item) { return item.type === type && item.measure === measure; })[0];
  }

  // The elder's limits of the chart's measures as dashed lines across it, each named at its right end.
  function drawLimits(lines) {
    return function (chart) {
      var ctx = chart.ctx;
      ctx.save();
      ctx.lineWidth = 1;
      ctx.setLineDash([6, 4]);
      ctx.font = Math.round(11 * devicePixelRatio) + "px sans-serif";
      var labelled = [];  // the labels' heights at the right end: one too close to another goes to the left end
      lines.forEach(function (line) {
        var y = Math.round(chart.valToPos(line.value, "y", true));
        ctx.strokeStyle = ctx.fillStyle = LIMIT_COLOURS[line.limit];
        ctx.beginPath();
        ctx.moveTo(chart.bbox.left, y);
        ctx.lineTo(chart.bbox.left + chart.bbox.width, y);
        ctx.stroke();
        var crowded = labelled.some(function (other) { return Math.abs(other - y) < 13 * devicePixelRatio; });
        ctx.textAlign = crowded ? "left" : "right";
        ctx.fillText(line.label + " " + line.value, crowded ? chart.bbox.left + 4
          : chart.bbox.left + chart.bbox.width - 4, y - 3);
        if (!crowded) labelled.push(y);
      });
      ctx.restore();
    };
  }

  function chartOf(type, since, until) {
    var shown = readings.filter(function (reading) {
      var at = Date.parse(reading.measured_at) / 1000;
      return reading.type === type && at >= since && at <= until;
    }).reverse();
    var box = el("figure", null, { "class": "ht-chart", "data-type": type });
    box.appendChild(el("figcaption", CC.label("health_trends.type", type)));
    $("ht-charts").appendChild(box);
    if (shown.length === 0) {
      box.appendChild(el("p", t("health_trends.none_in_range"), { "class": "muted ht-none" }));
      return;
    }
    var measures = own.measures[type];
    var lines = [];
    measures.forEach(function (measure) {
      var set = limitsOf(type, measure);
      LIMITS.forEach(function (limit) {
        if (set && set[limit] !== null) {
          lines.push({ value: set[limit], limit: limit, label: (measures.length > 1
            ? CC.label("health_trends.short", measure) + " " : "") + CC.label("health_trends.limit", limit) });
        }
      });
    });
    var data = [shown.map(function (reading) { return Date.parse(reading.measured_at) / 1000; })];
    measures.forEach(function (measure) {
      data.push(shown.map(function (reading) {
        var value = reading.values[measure];
        return value === undefined ? null : value;
      }));
    });
    var series = [{ label: t("health_trends.field.measured_at"),
                    value: function (chart, seconds) {
                      return seconds === null ? "—" : SHOWN.format(seconds * 1000);
                    } }];
    measures.forEach(function (measure, index) {
      series.push({ label: CC.label("health_trends.field", measure), stroke: SERIES_COLOURS[index], width: 2,
                    points: { show: true, size: 6 }, spanGaps: true });
    });
    charts.push(new uPlot({
      width: Math.max($("ht-charts").clientWidth - 16, 320), height: 220,
      tzDate: function (seconds) { return uPlot.tzDate(new Date(seconds * 1000), zone); },
      scales: {
        x: { time: true, range: function () { return [since, until]; } },
        y: { range: function (chart, low, high) {
          // The limits are in view too: a reading is read against them.
          lines.forEach(function (line) { low = Math.min(low, line.value); high = Math.max(high, line.value); });
          var pad = Math.max((high - low) * 0.08, 1);
          return [Math.floor(low - pad), Math.ceil(high + pad)];
        } }
      },
      series: series,
      hooks: { draw: [drawLimits(lines)] }
    }, data, box));
  }

  function showCharts() {
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    CC.clear($("ht-charts"));
    var until = Date.now() / 1000;
    var since = until - Number($("ht-range").value) * DAY;
    present().forEach(function (type) { chartOf(type, since, until); });
  }

  function present() {
    return TYPES.filter(function (type) {
      return readings.some(function (reading) { return reading.type === type; });
    });
  }

  function showReadings() {
    var types = present();
    $("ht-empty").hidden = types.length > 0;
    showLatest(types);
    showCharts();
  }

  function load() {
    var shown = elder;
    var mine = ++newest;
    var since = new Date(Date.now() - FETCH_DAYS * DAY * 1000).toISOString();
    return Promise.all([
      api("GET", "/elders/" + shown.id + "/readings?" + CC.query({ from: since, limit: FETCH_LIMIT })),
      api("GET", "/elders/" + shown.id + "/thresholds")
    ]).then(function (results) {
      if (mine !== newest || elder !== shown) return;  // another file was opened meanwhile
      var failed = results.filter(function (result) { return result.status !== 200; })[0];
      if (failed) { say($("ht-message"), errorText(failed), "bad"); return; }
      readings = results[0].body.items;
      limits = results[1].body.items;
      say($("ht-message"), readings.length >= FETCH_LIMIT ? t("health_trends.truncated", { count: FETCH_LIMIT }) : "");
      showReadings();
      showLimits();
    });
  }

  $("ht-range").addEventListener("change", showCharts);

  // ---- hand entry ------------------------------------------------------------------------------------------

  var entry = $("ht-entry");

  function showTypeFields() {
    var type = $("ht-type").value;
    Array.prototype.forEach.call(entry.querySelectorAll("[data-for-type]"), function (field) {
      field.hidden = field.getAttribute("data-for-type") !== type;
    });
  }

  function resetEntry() {
    CC.clearFieldErrors(entry, $("ht-entry-errors"));
    Array.prototype.forEach.call(entry.querySelectorAll("input"), function (input) { input.value = ""; });
    $("ht-measured_at").value = inputValue(Date.now());
    showTypeFields();
  }

  if (entry) {
    $("ht-type").addEventListener("change", showTypeFields);
    entry.addEventListener("submit", function (event) {
      event.preventDefault();
      var type = $("ht-type").value;
      var values = {};
      entry.querySelectorAll('[data-for-type="' + type + '"] [data-value]').forEach(function (input) {
        var name = input.getAttribute("data-value");
        var value = input.tagName === "SELECT" ? CC.orNull(input.value)
          : input.hasAttribute("data-time") ? typedInstant(input.value) : CC.numberOrNull(input.value);
        if (value !== null) values[name] = value;
      });
      var body = { type: type, measured_at: typedInstant($("ht-measured_at").value), values: values,
                   note: CC.orNull($("ht-note").value) };
      var shown = elder;
      api("POST", "/elders/" + shown.id + "/readings", body).then(function (result) {
        if (elder !== shown) return;
        if (result.status !== 201) {
          CC.showFieldErrors(entry, $("ht-entry-errors"), $("ht-entry-message"), result,
                             { fields: "health_trends.field", fix: "health_trends.fix_fields" });
          return;
        }
        resetEntry();
        $("ht-type").value = type;
        showTypeFields();
        var saved = t("health_trends.entry.saved", { type: CC.label("health_trends.type", type),
                                                     value: valueText(result.body) });
        var alarm = result.body.alarm_number;
        if (alarm) saved += " " + t("health_trends.entry.alarm", { number: alarm });
        say($("ht-entry-message"), saved, alarm ? "bad" : "good");
        load();
      });
    });
  }

  // ---- the limits: defaults and the elder's own, who set them and when -------------------------------------

  var limitsForm = $("ht-limits-form");
  var editingType = null;

  function showLimits() {
    var body = $("ht-limits-body");
    CC.clear(body);
    TYPES.forEach(function (type) {
      var measures = own.measures[type];
      var ownLimits = limits.some(function (item) { return item.type === type && item.source === "elder"; });
      measures.forEach(function (measure, index) {
        var item = limitsOf(type, measure);
        if (!item) return;
        var row = el("tr", null, { "data-type": type, "data-measure": measure });
        row.appendChild(el("td", CC.label("health_trends.type", type) + (measures.length > 1
          ? " · " + CC.label("health_trends.field", measure) : "")));
        LIMITS.forEach(function (limit) {
          row.appendChild(el("td", item[limit] === null ? "—" : String(item[limit])));
        });
        row.appendChild(el("td", CC.label("health_trends.limits.source", item.source),
                           { "class": item.source === "elder" ? "ht-own" : "" }));
        row.appendChild(el("td", item.source === "elder" ? t("health_trends.limits.set_by", {
          doctor: item.doctor_name || "—", by: item.set_by || "—", at: shownTime(item.set_at) })
          + (item.note ? " · " + item.note : "") : ""));
        var actions = el("td", null, { "class": "actions" });
        if (limitsForm && index === 0) {
          actions.appendChild(button(t("health_trends.limits.edit"), function () { editLimits(type); }));
          if (ownLimits) {
            actions.appendChild(button(t("health_trends.limits.clear"), function () { clearLimits(type); }));
          }
        }
        row.appendChild(actions);
        body.appendChild(row);
      });
    });
  }

  function button(text, onClick) {
    var node = el("button", text, { type: "button", "class": "secondary small" });
    node.addEventListener("click", onClick);
    return node;
  }

  function doctors() {
    return (elder.contacts || []).filter(function (contact) { return contact.role === "doctor"; });
  }

  function editLimits(type) {
    editingType = type;
    CC.clearFieldErrors(limitsForm, $("ht-limits-errors"));
    say($("ht-limits-message"), "");
    $("ht-limits-form-heading").textContent = t("health_trends.limits.editing",
                                                { type: CC.label("health_trends.type", type) });
    var body = $("ht-limits-form-body");
    CC.clear(body);
    own.measures[type].forEach(function (measure) {
      var item = limitsOf(type, measure) || {};
      var row = el("tr");
      row.appendChild(el("td", CC.label("health_trends.field", measure)));
      LIMITS.forEach(function (limit) {
        var cell = el("td", null, { "data-errors": "" });
        var input = el("input", null, { "data-field": "measures." + measure + "." + limit, "data-measure": measure,
                                         "data-limit": limit, inputmode: "decimal", maxlength: "10", size: "6",
                                         "aria-label": CC.label("health_trends.field", measure) + " · "
                                           + CC.label("health_trends.limit", limit) });
        input.value = item[limit] === null || item[limit] === undefined ? "" : String(item[limit]);
        input.setAttribute("data-shown", input.value);
        cell.appendChild(input);
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    var select = $("ht-doctor");
    CC.clear(select);
    doctors().forEach(function (contact) {
      select.appendChild(el("option", contact.name + " · " + contact.phone, { value: String(contact.id) }));
    });
    $("ht-no-doctor").hidden = doctors().length > 0;
    $("ht-limits-save").disabled = doctors().length === 0;
    $("ht-limits-note").value = "";
    limitsForm.hidden = false;
    body.querySelector("input").focus();
  }

  function clearLimits(type) {
    var asked = t("health_trends.limits.clear_confirm", { type: CC.label("health_trends.type", type) });
    if (!window.confirm(asked)) return;
    var shown = elder;
    api("DELETE", "/elders/" + shown.id + "/thresholds/" + type).then(function (result) {
      if (elder !== shown) return;
      if (result.status !== 200) { say($("ht-limits-message"), errorText(result), "bad"); return; }
      say($("ht-limits-message"), t("health_trends.limits.cleared"), "good");
      load();
    });
  }

  if (limitsForm) {
    $("ht-limits-cancel").addEventListener("click", function () { limitsForm.hidden = true; editingType = null; });
    limitsForm.addEventListener("submit", function (event) {
      event.preventDefault();
      // Only the measures whose limits were changed: the others keep theirs (the defaults stay defaults).
      var measures = {};
      var changed = {};
      limitsForm.querySelectorAll("[data-limit]").forEach(function (input) {
        var measure = input.getAttribute("data-measure");
        measures[measure] = measures[measure] || {};
        measures[measure][input.getAttribute("data-limit")] = CC.numberOrNull(input.value);
        if (input.value.trim() !== input.getAttribute("data-shown")) changed[measure] = true;
      });
      Object.keys(measures).forEach(function (measure) { if (!changed[measure]) delete measures[measure]; });
      if (Object.keys(measures).length === 0) {
        say($("ht-limits-message"), t("health_trends.limits.no_change"));
        return;
      }
      var body = { measures: measures, doctor_contact_id: Number($("ht-doctor").value),
                   note: CC.orNull($("ht-limits-note").value) };
      var shown = elder;
      api("PUT", "/elders/" + shown.id + "/thresholds/" + editingType, body).then(function (result) {
        if (elder !== shown) return;
        if (result.status !== 200) {
          CC.showFieldErrors(limitsForm, $("ht-limits-errors"), $("ht-limits-message"), result,
                             { fields: ["health_trends.field", "health_trends.limit"],
                               fix: "health_trends.fix_fields" });
          return;
        }
        limitsForm.hidden = true;
        editingType = null;
        say($("ht-limits-message"), t("health_trends.limits.saved"), "good");
        load();
      });
    });
  }

  // ---- following the file the page shows ------------------------------------------------------------------

  document.addEventListener("cc:elder-opened", function (event) {
    var opened = event.detail.elder;
    var same = elder && elder.id === opened.id;
    elder = opened;  // a saved file comes again: its contacts may have changed
    if (same) return;
    readings = [];
    limits = [];
    say($("ht-message"), "");
    say($("ht-limits-message"), "");
    if (entry) { say($("ht-entry-message"), ""); resetEntry(); }
    if (limitsForm) limitsForm.hidden = true;
    $("ht").hidden = false;
    load();
  });

  document.addEventListener("cc:elder-closed", function () {
    elder = null;
    newest++;
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    $("ht").hidden = true;
  });
})();
