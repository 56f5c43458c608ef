// The elder's health record, a section of the elders page (contract.PageSection): chronic-disease plans, GB/T
// 42195-2022 capability assessments, examinations, follow-up visits and doctor's notes of the elder the page has
// open. Plain JavaScript over /api/v1/elders/{id}/…; common.js (window.CC) and elders.js are loaded first. The page
// says which elder is open with "cc:elder-opened" / "cc:elder-closed". Each tab is read when first shown for that
// elder (every read is audited by the API; nothing is read that is not looked at) and shows only what the API
// returned: a field it masked for this role says so. Every check is the API's: a refused form keeps what was typed
// and marks the fields the API names.
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, label = CC.label;
  var own = CC.config.sections.health_records, may = own.may;
  var $ = function (id) { return document.getElementById(id); };
  var TABS = ["plans", "assessments", "examinations", "visits", "notes"];
  var PATHS = { plans: "chronic-plans", assessments: "assessments", examinations: "examinations",
                visits: "health-visits", notes: "doctor-notes" };
  var ROWS = { measurements: ["measure", "every_days", "times"], targets: ["measure", "min", "max", "unit"],
               medications: ["name", "dose", "frequency"] };
  var NUMBERS = ["every_days", "min", "max"];
  var elder = null;  // the open elder's file, as the page announced it
  var loaded = {};  // tab -> the elder it was read for
  var plans = [];  // the elder's plans as last read
  var standard = null;  // GET /capability-assessment, read once
  var editingPlan = null;  // null: the plan form starts a plan; else the plan (as read) it changes

  function path(what) { return "/elders/" + elder.id + "/" + PATHS[what]; }

  function masked(row, field) { return (row.masked_fields || []).indexOf(field) >= 0; }

  function content(row, field, show) {
    if (masked(row, field)) return el("em", t("health_records.masked"), { "class": "muted", "data-masked": field });
    return el("span", show(row[field]));
  }

  function showErrors(form, result) {
    CC.showFieldErrors(form, $(form.id.replace(/-form$/, "-errors")), $(form.id.replace(/-form$/, "-message")),
      result, { fields: ["health_records.field", "health_records.item", "health_records.risk_event"],
                fix: "health_records.fix_fields" });
  }

  function clearErrors(form) {
    CC.clearFieldErrors(form, $(form.id.replace(/-form$/, "-errors")));
    say($(form.id.replace(/-form$/, "-message")), "");
  }

  // ---- reading a form: each [data-field] by its API path ("findings.systolic", "items.eating") -----------------

  function valueOf(node) {
    if (node.type === "checkbox") return node.checked;
    if (node.hasAttribute("data-number")) return CC.numberOrNull(node.value);
    if (node.hasAttribute("data-lines")) {
      return node.value.split("\n").map(function (line) { return line.trim(); }).filter(Boolean);
    }
    return CC.orNull(node.value);
  }

  function setPath(body, fieldPath, value) {
    var parts = fieldPath.split("."), target = body;
    parts.slice(0, -1).forEach(function (part) { target = target[part] = target[part] || {}; });
    target[parts[parts.length - 1]] = value;
  }

  // What the form says, nothing for an empty field (the API's "not given"); the list rows are read apart.
  function formBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[data-field], select[data-field], textarea[data-field]"),
      function (node) {
        if (node.closest("[data-list]")) return;
        var value = valueOf(node);
        if (value !== null && !(Array.isArray(value) && value.length === 0)) setPath(body, node.dataset.field, value);
      });
    return body;
  }

  function resetForm(form) {
    form.reset();
    clearErrors(form);
    Array.prototype.forEach.call(form.querySelectorAll('input[type="date"]'), function (node) {
      node.value = own.today;
    });
  }

  // ---- tabs: each read when first shown for this elder --------------------------------------------------------

  function showTab(name) {
    say($("hr-message"), "");
    TABS.forEach(function (tab) {
      $("hr-tab-" + tab).setAttribute("aria-selected", String(tab === name));
      $("hr-panel-" + tab).hidden = tab !== name;
    });
    if (loaded[name] !== elder) load(name);
  }

  function load(what) {
    var mine = elder;
    loaded[what] = mine;
    return api("GET", path(what)).then(function (result) {
      if (elder !== mine) return;  // another elder was opened meanwhile
      if (result.status !== 200) { loaded[what] = null; say($("hr-message"), CC.errorText(result), "bad"); return; }
      render(what, result.body);
    });
  }

  function fillList(what, rows, itemOf) {
    var list = $("hr-" + what);
    CC.clear(list);
    rows.forEach(function (row) { list.appendChild(itemOf(row)); });
    $("hr-" + what + "-none").hidden = rows.length > 0;
  }

  function who(row, when, by) {
    return el("strong", [row[when], row[by]].filter(Boolean).join(" · "));
  }

  function recorded(row) {
    return el("span", t("health_records.recorded", { who: row.recorded_by, when: CC.when(row.recorded_at) }),
              { "class": "muted" });
  }

  // ---- chronic-disease plans ------------------------------------------------------------------------------------

  function measureName(measure) { return label("health_records.measure", measure); }

  function joined(items, show) {
    return items && items.length ? items.map(show).join("；") : "—";
  }

  function planItem(plan) {
    var overdue = plan.active && plan.next_visit_due < own.today;
    var item = el("li", null, { "data-plan-id": String(plan.id), "class": plan.active ? "" : "muted" });
    var heading = el("div");
    heading.appendChild(content(plan, "conditions", function (conditions) {
      return conditions.map(function (condition) { return label("health_records.condition", condition); }).join("、");
    }));
    heading.appendChild(el("span", " · " + (plan.active ? t("health_records.plan.active")
      : t("health_records.plan.ended", { day: plan.ended_on || "—" })), { "class": "hr-state" }));
    item.appendChild(heading);
    var fields = el("dl", null, { "class": "fields" });
    CC.addField(fields, t("health_records.field.started_on"), plan.started_on);
    if (plan.active) {
      CC.addField(fields, t("health_records.field.next_visit_due"), plan.next_visit_due + (overdue
        ? " — " + t("health_records.plan.overdue") : ""), { "class": overdue ? "alert" : "", "data-next-visit": "" });
    }
    CC.addField(fields, t("health_records.field.visit_interval_days"),
                t("health_records.every_days", { days: plan.visit_interval_days }));
    [["targets", function (target) {
      var range = [target.min, target.max].map(function (value) { return value === null ? "" : value; }).join("–");
      return measureName(target.measure) + " " + range + (target.unit ? " " + target.unit : "");
    }], ["measurements", function (measurement) {
      return measureName(measurement.measure) + " " + t("health_records.every_days", { days: measurement.every_days })
        + (measurement.times ? " (" + measurement.times + ")" : "");
    }], ["medications", function (medication) {
      return [medication.name, medication.dose, medication.frequency].filter(Boolean).join(" ");
    }]].forEach(function (pair) {
      fields.appendChild(el("dt", t("health_records.field." + pair[0])));
      var value = el("dd");
      value.appendChild(content(plan, pair[0], function (items) { return joined(items, pair[1]); }));
      fields.appendChild(value);
    });
    item.appendChild(fields);
    item.appendChild(recorded(plan));
    if (may.plan_changes && plan.active && !masked(plan, "conditions")) {
      var actions = el("div", null, { "class": "row" });
      var change = el("button", t("health_records.plan.change"), { type: "button", "class": "secondary small",
                                                                    "data-action": "change" });
      change.addEventListener("click", function () { openPlanForm(plan); });
      var end = el("button", t("health_records.plan.end"), { type: "button", "class": "danger small",
                                                              "data-action": "end" });
      end.addEventListener("click", function () { endPlan(plan); });
      actions.appendChild(change);
      actions.appendChild(end);
      item.appendChild(actions);
    }
    return item;
  }

  function renderPlans(body) {
    plans = body.items;
    fillList("plans", plans, planItem);
    var select = $("hr-visit-plan");
    if (!select) return;
    while (select.options.length > 1) select.remove(1);
    plans.filter(function (plan) { return plan.active; }).forEach(function (plan) {
      var conditions = masked(plan, "conditions") ? "#" + plan.id : plan.conditions.map(function (condition) {
        return label("health_records.condition", condition);
      }).join("、");
      select.appendChild(el("option", conditions + " · " + plan.next_visit_due, { value: String(plan.id) }));
    });
  }

  function addRow(list, values) {
    var row = el("tr");
    ROWS[list].forEach(function (column) {
      var cell = el("td");
      var input = el("input", null, { placeholder: t("health_records.field." + column),
                                      "aria-label": t("health_records.field." + column), "data-column": column });
      if (NUMBERS.indexOf(column) >= 0) input.setAttribute("data-number", "");
      var value = values ? values[column] : null;
      input.value = value === null || value === undefined ? "" : String(value);
      cell.appendChild(input);
      row.appendChild(cell);
    });
    $("hr-plan-" + list).tBodies[0].appendChild(row);
  }

  // A list's rows as the API takes them: empty rows dropped, the rest numbered as sent, so an error on
  // "targets.1.max" marks the second row the API got.
  function listRows(list) {
    var rows = [];
    Array.prototype.forEach.call($("hr-plan-" + list).tBodies[0].rows, function (row) {
      var inputs = row.querySelectorAll("input");
      var value = {};
      Array.prototype.forEach.call(inputs, function (input) {
        var read = valueOf(input);
        if (read !== null) value[input.dataset.column] = read;
      });
      if (Object.keys(value).length === 0) { row.parentNode.removeChild(row); return; }
      Array.prototype.forEach.call(inputs, function (input) {
        input.setAttribute("data-field", list + "." + rows.length + "." + input.dataset.column);
      });
      rows.push(value);
    });
    return rows;
  }

  function openPlanForm(plan) {
    var form = $("hr-plan-form");
    editingPlan = plan;
    resetForm(form);
    Object.keys(ROWS).forEach(function (list) {
      CC.clear($("hr-plan-" + list).tBodies[0]);
      (plan ? plan[list] : []).forEach(function (values) { addRow(list, values); });
      addRow(list, null);
    });
    Array.prototype.forEach.call(form.querySelectorAll('[name="hr-condition"]'), function (box) {
      box.checked = !!plan && plan.conditions.indexOf(box.value) >= 0;
    });
    $("hr-plan-first_visit_due").value = "";
    if (plan) {
      $("hr-plan-next_visit_due").value = plan.next_visit_due;
      $("hr-plan-visit_interval_days").value = String(plan.visit_interval_days);
    }
    Array.prototype.forEach.call(form.querySelectorAll(".hr-new-only"), function (node) { node.hidden = !!plan; });
    Array.prototype.forEach.call(form.querySelectorAll(".hr-edit-only"), function (node) { node.hidden = !plan; });
    $("hr-plan-heading").textContent = plan ? t("health_records.plan.changing", { id: plan.id })
      : t("health_records.plan.new");
    form.hidden = false;
    form.querySelector('[name="hr-condition"]').focus();
  }

  function planSaved(result, text) {
    if (result.status === 409) {
      say($("hr-plans-message"), t("health_records.plan.conflict"), "bad");
      load("plans");
      return;
    }
    say($("hr-plans-message"), text, "good");
    if ($("hr-plan-form")) $("hr-plan-form").hidden = true;
    editingPlan = null;
    load("plans");
  }

  function submitPlan(event) {
    event.preventDefault();
    var form = $("hr-plan-form");
    var body = formBody(form);
    body.conditions = Array.prototype.filter.call(form.querySelectorAll('[name="hr-condition"]'), function (box) {
      return box.checked;
    }).map(function (box) { return box.value; });
    Object.keys(ROWS).forEach(function (list) { body[list] = listRows(list); });
    var plan = editingPlan, request;
    if (plan) {
      delete body.started_on;
      delete body.first_visit_due;
      body.version = plan.version;
      request = api("PATCH", path("plans") + "/" + plan.id, body);
    } else {
      delete body.next_visit_due;
      request = api("POST", path("plans"), body);
    }
    var mine = elder;
    request.then(function (result) {
      if (elder !== mine) return;
      if (result.status === 409) { planSaved(result); return; }
      if (result.status !== 200 && result.status !== 201) { showErrors(form, result); return; }
      planSaved(result, t(plan ? "health_records.plan.saved" : "health_records.plan.started"));
    });
  }

  function endPlan(plan) {
    if (!window.confirm(t("health_records.plan.end_confirm"))) return;
    var mine = elder;
    api("PATCH", path("plans") + "/" + plan.id, { version: plan.version, active: false }).then(function (result) {
      if (elder !== mine) return;
      if (result.status === 200 || result.status === 409) {
        planSaved(result, t("health_records.plan.ended_now"));
        return;
      }
      say($("hr-plans-message"), CC.errorText(result), "bad");
    });
  }

  // ---- capability assessments ---------------------------------------------------------------------------------

  function levelName(level) {
    return level === null || level === undefined ? t("health_records.no_level")
      : level + " " + label("health_records.level", level);
  }

  function renderAssessments(body) {
    $("hr-care-level").textContent = levelName(body.care_level);
    if (body.care_level !== elder.care_level) {
      // The latest assessment set the elder's care level: the page's copy of the file follows.
      var changes = { care_level: body.care_level };
      document.dispatchEvent(new CustomEvent("cc:elder-changed", { detail: { elder_id: elder.id, changes: changes } }));
    }
    var rows = $("hr-assessments");
    CC.clear(rows);
    body.items.forEach(function (row) {
      var line = el("tr", null, { "data-assessment-id": String(row.id), "class": row.current ? "hr-current" : "" });
      line.appendChild(el("td", row.assessed_on));
      line.appendChild(el("td", levelName(row.level)));
      var total = el("td");
      total.appendChild(content(row, "total", function (value) { return value + " / 90"; }));
      line.appendChild(total);
      line.appendChild(el("td", [row.assessor, row.second_assessor].filter(Boolean).join("、")));
      line.appendChild(el("td", label("health_records.reason", row.reason)));
      rows.appendChild(line);
    });
    $("hr-assessments-none").hidden = body.items.length > 0;
  }

  // The form from the standard the API scores by: one choice per item, grouped by indicator, no score chosen
  // beforehand (the API refuses a missing one), and the levels' totals as the cut-offs.
  function buildAssessmentItems() {
    var holder = $("hr-assessment-items");
    CC.clear(holder);
    var groups = {};
    standard.items.forEach(function (item) {
      if (!groups[item.indicator]) {
        groups[item.indicator] = el("fieldset", null, { "class": "hr-grid" });
        groups[item.indicator].appendChild(el("legend", label("health_records.indicator", item.indicator)));
        holder.appendChild(groups[item.indicator]);
      }
      var field = el("label", label("health_records.item", item.code) + " ");
      var select = el("select", null, { "data-field": "items." + item.code, "data-number": "" });
      select.appendChild(el("option", "—", { value: "" }));
      item.scores.forEach(function (score) {
        select.appendChild(el("option", String(score), { value: String(score) }));
      });
      field.appendChild(select);
      groups[item.indicator].appendChild(field);
    });
    holder.appendChild(el("p", t("health_records.cut_offs") + " " + standard.levels.map(function (level) {
      return levelName(level.level) + " " + level.min_total + "–" + level.max_total;
    }).join("；"), { "class": "muted", id: "hr-cut-offs" }));
  }

  function openAssessmentForm() {
    var ready = standard ? Promise.resolve(true) : api("GET", "/capability-assessment").then(function (result) {
      if (result.status !== 200) { say($("hr-message"), CC.errorText(result), "bad"); return false; }
      standard = result.body;
      buildAssessmentItems();
      return true;
    });
    ready.then(function (ok) {
      if (!ok) return;
      resetForm($("hr-assessment-form"));
      say($("hr-assessment-result"), "");
      $("hr-assessment-form").hidden = false;
      $("hr-assessment-assessor").focus();
    });
  }

  function submitAssessment(event) {
    event.preventDefault();
    var form = $("hr-assessment-form"), mine = elder;
    api("POST", path("assessments"), formBody(form)).then(function (result) {
      if (elder !== mine) return;
      if (result.status !== 201) { showErrors(form, result); return; }
      var row = result.body;
      form.hidden = true;
      say($("hr-assessment-result"), t("health_records.assessment.saved", { level: levelName(row.level),
        total: row.total === null ? "—" : row.total, preliminary: levelName(row.preliminary_level) }), "good");
      load("assessments");  // the care level the API now gives the elder, and the history
    });
  }

  // ---- examinations, follow-up visits, the doctor's notes -------------------------------------------------------

  function examinationItem(row) {
    var item = el("li", null, { "data-id": String(row.id) });
    item.appendChild(who(row, "examined_on", "examiner"));
    if (row.institution) item.appendChild(el("span", " · " + row.institution));
    var fields = el("dl", null, { "class": "fields" });
    if (masked(row, "findings")) {
      fields.appendChild(el("dt", t("health_records.field.findings")));
      var hidden = el("dd");
      hidden.appendChild(content(row, "findings"));
      fields.appendChild(hidden);
    } else {
      var findings = row.findings || {};
      if (findings.systolic !== null && findings.systolic !== undefined) {
        CC.addField(fields, t("health_records.blood_pressure"), findings.systolic + "/" + findings.diastolic + " mmHg");
      }
      ["heart_rate", "height_cm", "weight_kg", "fasting_glucose", "summary", "advice"].forEach(function (name) {
        if (findings[name] !== null && findings[name] !== undefined) {
          CC.addField(fields, t("health_records.field." + name), String(findings[name]));
        }
      });
      if (findings.abnormal && findings.abnormal.length) {
        CC.addField(fields, t("health_records.field.abnormal"), findings.abnormal.join("；"));
      }
    }
    item.appendChild(fields);
    item.appendChild(recorded(row));
    return item;
  }

  function textItem(when, by, field, extra) {
    return function (row) {
      var item = el("li", null, { "data-id": String(row.id) });
      item.appendChild(who(row, when, by));
      if (extra) item.appendChild(el("span", " · " + extra(row)));
      var text = el("div");
      text.appendChild(content(row, field, function (value) { return value || "—"; }));
      item.appendChild(text);
      item.appendChild(recorded(row));
      return item;
    };
  }

  var visitItem = textItem("visited_on", "doctor", "notes", function (row) {
    return label("health_records.visit_kind", row.kind) + (row.plan_id ? " · " + t("health_records.for_plan",
      { id: row.plan_id }) : "");
  });

  var noteItem = textItem("written_on", "doctor", "note");

  function render(what, body) {
    if (what === "plans") renderPlans(body);
    else if (what === "assessments") renderAssessments(body);
    else fillList(what, body.items, { examinations: examinationItem, visits: visitItem, notes: noteItem }[what]);
  }

  ["examinations", "visits", "notes"].forEach(function (what) {
    var form = $("hr-" + what + "-form");
    if (!form) return;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var mine = elder;
      api("POST", path(what), formBody(form)).then(function (result) {
        if (elder !== mine) return;
        if (result.status !== 201) { showErrors(form, result); return; }
        resetForm(form);
        say($("hr-" + what + "-message"), t("health_records.saved"), "good");
        load(what);
        if (what === "visits" && result.body.plan_id) load("plans");  // the plan's next visit moved
      });
    });
  });

  // ---- following the page's open elder ------------------------------------------------------------------------

  function reset() {
    loaded = {};
    plans = [];
    editingPlan = null;
    ["hr-message", "hr-plans-message", "hr-assessment-result"].forEach(function (id) { say($(id), ""); });
    TABS.forEach(function (tab) { if ($("hr-" + tab)) CC.clear($("hr-" + tab)); });
    $("hr-care-level").textContent = "";
    Array.prototype.forEach.call($("hr-section").querySelectorAll("form"), function (form) { resetForm(form); });
    if ($("hr-plan-form")) $("hr-plan-form").hidden = true;
    if ($("hr-assessment-form")) $("hr-assessment-form").hidden = true;
  }

  document.addEventListener("cc:elder-opened", function (event) {
    var opened = event.detail.elder;
    var same = elder && elder.id === opened.id;
    elder = opened;
    if (!same) reset();
    else loaded = {};  // the file was saved: read the record again where it is looked at
    $("hr-section").hidden = false;
    var shown = TABS.filter(function (tab) { return !$("hr-panel-" + tab).hidden; })[0];
    showTab(shown && same ? shown : "plans");
  });

  document.addEventListener("cc:elder-closed", function () {
    elder = null;
    reset();  // nothing of the record stays in the page once its elder is closed
    $("hr-section").hidden = true;
  });

  TABS.forEach(function (tab) {
    $("hr-tab-" + tab).addEventListener("click", function () { showTab(tab); });
  });

  if ($("hr-plan-form")) {
    $("hr-plan-new").addEventListener("click", function () { openPlanForm(null); });
    $("hr-plan-cancel").addEventListener("click", function () {
      $("hr-plan-form").hidden = true;
      editingPlan = null;
    });
    $("hr-plan-form").addEventListener("submit", submitPlan);
    Array.prototype.forEach.call($("hr-plan-form").querySelectorAll(".hr-add-row"), function (button) {
      button.addEventListener("click", function () { addRow(button.dataset.list, null); });
    });
  }
  if ($("hr-assessment-form")) {
    $("hr-assessment-new").addEventListener("click", openAssessmentForm);
    $("hr-assessment-cancel").addEventListener("click", function () { $("hr-assessment-form").hidden = true; });
    $("hr-assessment-form").addEventListener("submit", submitAssessment);
  }
})();
