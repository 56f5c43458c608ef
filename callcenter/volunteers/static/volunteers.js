// The volunteers registry page: find volunteers, register or edit one (trainings, certificates), review, record a
// service, add feedback, pair with elders. Plain JavaScript over the REST API (/api/v1/volunteers…); common.js
// (window.CC) is loaded first. Every check is the API's: a refused form stays as typed and its fields are marked
// with the API's messages, so the page never disagrees with the server about what is valid.
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, when = CC.when;
  var $ = function (id) { return document.getElementById(id); };
  var PAGE = 20;
  var offset = 0;
  var current = null;  // the volunteer on screen (as the API answered it)
  var editing = null;  // null: the form registers a new volunteer; else the id it changes

  function today() {
    var now = new Date();
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
  }

  var orNull = CC.orNull, numberOrNull = CC.numberOrNull;

  // "trainings.0.hours" -> "培训记录 · 1 · 学时": the API's field path in the operator's words.
  function fieldLabel(path) { return CC.fieldLabel(path, "volunteers.field"); }

  var clearErrors = CC.clearFieldErrors;

  // The API's answer to a refused request: each offending field marked, each message listed under the form.
  function showErrors(form, list, message, result) {
    CC.showFieldErrors(form, list, message, result, { fields: "volunteers.field", fix: "volunteers.fix_fields" });
  }

  // ---- teams (the selects, and registering one) -------------------------------------------------------------

  var teams = [];

  function loadTeams() {
    return api("GET", "/volunteer-teams").then(function (result) {
      if (result.status !== 200) return;
      teams = result.body.items;
      Array.prototype.forEach.call(document.querySelectorAll("select.team-select"), function (select) {
        var chosen = select.value;
        while (select.options.length > 1) select.remove(1);
        teams.forEach(function (team) { select.appendChild(el("option", team.name, { value: String(team.id) })); });
        select.value = chosen;
      });
    });
  }

  $("team-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { name: $("t-name").value.trim(), community: orNull($("t-community").value),
                 leader_name: orNull($("t-leader").value), phone: orNull($("t-phone").value) };
    api("POST", "/volunteer-teams", body).then(function (result) {
      if (result.status !== 201) { showErrors($("team-form"), $("team-errors"), $("team-message"), result); return; }
      clearErrors($("team-form"), $("team-errors"));
      $("team-form").reset();
      say($("team-message"), t("volunteers.team.done", { name: result.body.name }), "good");
      loadTeams();
    });
  });

  // ---- the list ---------------------------------------------------------------------------------------------

  function search(event) {
    if (event) { event.preventDefault(); offset = 0; }
    var query = CC.query({ limit: PAGE, offset: offset, name: $("q-name").value.trim(),
                           phone: $("q-phone").value.trim(), community: $("q-community").value.trim(),
                           team_id: $("q-team").value, review_status: $("q-status").value });
    return api("GET", "/volunteers?" + query).then(function (result) {
      var body = $("vol-body");
      CC.clear(body);
      if (result.status !== 200) {
        var error = result.body && result.body.error;
        say($("vol-list-message"), error ? fieldLabel(error.field) + ": " + error.message.replace(
          (error.field || "") + ": ", "") : t("common.error.network"), "bad");
        return;
      }
      var page = result.body;
      page.items.forEach(function (volunteer) { body.appendChild(listRow(volunteer)); });
      $("vol-none").hidden = page.items.length > 0;
      $("vol-prev").disabled = offset === 0;
      $("vol-next").disabled = offset + page.items.length >= page.total;
      $("vol-page-info").textContent = page.total ? t("volunteers.page", { from: offset + 1,
        to: offset + page.items.length, total: page.total }) : "";
      say($("vol-list-message"), "");
    });
  }

  // A volunteer's summary in words: the services given, and the complaints and awards received.
  function servicesText(summary) {
    return t("volunteers.services", { count: summary.service_records, hours: summary.service_hours });
  }

  function feedbackText(summary) {
    return t("volunteers.complaints_awards", { complaints: summary.complaints, awards: summary.awards });
  }

  function listRow(volunteer) {
    var summary = volunteer.summary;
    var row = el("tr", null, { "data-volunteer-id": String(volunteer.id) });
    row.appendChild(el("td", volunteer.full_name));
    row.appendChild(el("td", volunteer.phone));
    row.appendChild(el("td", volunteer.community || ""));
    row.appendChild(el("td", volunteer.team_name || ""));
    row.appendChild(el("td", CC.label("volunteers.status", volunteer.review_status),
      { "data-status": volunteer.review_status }));
    row.appendChild(el("td", servicesText(summary)));
    row.appendChild(el("td", summary.average_rating === null ? "—" : String(summary.average_rating)));
    row.appendChild(el("td", feedbackText(summary)));
    row.appendChild(el("td", String(summary.paired_elders)));
    row.appendChild(CC.buttonCell(t("volunteers.open"), function () { showVolunteer(volunteer.id); }));
    return row;
  }

  // ---- the form: register or edit ---------------------------------------------------------------------------

  function input(type, field, value, attrs) {
    var node = el("input", null, Object.assign({ type: type, "data-name": field }, attrs || {}));
    node.value = value === null || value === undefined ? "" : String(value);
    return node;
  }

  function removable(row) {
    var cell = el("td");
    var remove = el("button", t("volunteers.remove"), { type: "button", "class": "secondary small" });
    remove.addEventListener("click", function () { row.parentNode.removeChild(row); });
    cell.appendChild(remove);
    row.appendChild(cell);
    return row;
  }

  function addTraining(training) {
    training = training || {};
    var row = el("tr");
    [input("text", "name", training.name, { maxlength: "100", "aria-label": t("volunteers.field.name") }),
     input("date", "completed_on", training.completed_on, { "aria-label": t("volunteers.field.completed_on") }),
     input("number", "hours", training.hours, { min: "0", step: "0.5", "aria-label": t("volunteers.field.hours") })]
      .forEach(function (node) { var cell = el("td"); cell.appendChild(node); row.appendChild(cell); });
    $("v-trainings").tBodies[0].appendChild(removable(row));
  }

  function addCertificate(certificate) {
    certificate = certificate || {};
    var row = el("tr");
    [input("text", "name", certificate.name, { maxlength: "100", "aria-label": t("volunteers.field.name") }),
     input("text", "number", certificate.number, { maxlength: "64", "aria-label": t("volunteers.field.number") }),
     input("date", "issued_on", certificate.issued_on, { "aria-label": t("volunteers.field.issued_on") }),
     input("date", "expires_on", certificate.expires_on, { "aria-label": t("volunteers.field.expires_on") })]
      .forEach(function (node) { var cell = el("td"); cell.appendChild(node); row.appendChild(cell); });
    $("v-certificates").tBodies[0].appendChild(removable(row));
  }

  // The rows as the API wants them; each input is tagged with its path (trainings.1.hours) for the API's errors.
  function rowsOf(table, list, numbers, optional) {
    return Array.prototype.map.call($(table).tBodies[0].rows, function (row, index) {
      var item = {};
      Array.prototype.forEach.call(row.querySelectorAll("input"), function (node) {
        var name = node.getAttribute("data-name");
        node.setAttribute("data-field", list + "." + index + "." + name);
        var value = numbers.indexOf(name) >= 0 ? numberOrNull(node.value) : orNull(node.value);
        if (value !== null || optional.indexOf(name) < 0) item[name] = value;
      });
      return item;
    });
  }

  function openEditor(volunteer) {
    editing = volunteer ? volunteer.id : null;
    $("vol-editor-heading").textContent = volunteer ? t("volunteers.editor.edit", { name: volunteer.full_name })
      : t("volunteers.editor.new");
    var form = $("vol-form");
    form.reset();
    clearErrors(form, $("vol-form-errors"));
    say($("vol-form-message"), "");
    CC.clear($("v-trainings").tBodies[0]);
    CC.clear($("v-certificates").tBodies[0]);
    if (volunteer) {
      ["full_name", "phone", "id_number", "community", "notes"].forEach(function (name) {
        $("v-" + name).value = volunteer[name] || "";
      });
      $("v-team_id").value = volunteer.team_id === null ? "" : String(volunteer.team_id);
      $("v-skills").value = volunteer.skills.join("、");
      volunteer.trainings.forEach(addTraining);
      volunteer.certificates.forEach(addCertificate);
    }
    $("vol-editor").hidden = false;
    $("v-full_name").focus();
  }

  function formBody() {
    var team = $("v-team_id").value;
    return {
      full_name: $("v-full_name").value.trim(),
      phone: $("v-phone").value.trim(),
      id_number: orNull($("v-id_number").value),
      team_id: team === "" ? null : Number(team),
      community: orNull($("v-community").value),
      skills: $("v-skills").value.split(/[,，、;；]/).map(function (s) { return s.trim(); })
        .filter(function (s) { return s !== ""; }),
      notes: orNull($("v-notes").value),
      trainings: rowsOf("v-trainings", "trainings", ["hours"], []),
      certificates: rowsOf("v-certificates", "certificates", [], ["number", "expires_on"]),
    };
  }

  $("vol-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var body = formBody();
    var request = editing === null ? api("POST", "/volunteers", body) : api("PATCH", "/volunteers/" + editing, body);
    $("vol-save").disabled = true;
    request.then(function (result) {
      $("vol-save").disabled = false;
      if (result.status !== 200 && result.status !== 201) {
        showErrors($("vol-form"), $("vol-form-errors"), $("vol-form-message"), result);
        return;
      }
      $("vol-editor").hidden = true;
      render(result.body);
      say($("review-message"), t(editing === null ? "volunteers.created" : "volunteers.saved"), "good");
      search();
    });
  });

  $("vol-new").addEventListener("click", function () { openEditor(null); });
  $("vol-cancel").addEventListener("click", function () { $("vol-editor").hidden = true; });
  $("v-add-training").addEventListener("click", function () { addTraining(); });
  $("v-add-certificate").addEventListener("click", function () { addCertificate(); });
  $("d-edit").addEventListener("click", function () { if (current) openEditor(current); });

  // ---- one volunteer: the file, review, services, feedback, pairings ----------------------------------------

  function showVolunteer(id) {
    return api("GET", "/volunteers/" + id).then(function (result) {
      if (result.status !== 200) { say($("vol-list-message"), CC.errorText(result), "bad"); return; }
      ["review", "service", "feedback", "pair"].forEach(function (part) {
        clearErrors($(part === "pair" ? "pair-search" : part + "-form"), $(part + "-errors"));
        say($(part + "-message"), "");
      });
      CC.clear($("pair-results"));
      render(result.body);
      $("vol-detail").scrollIntoView({ block: "start" });
    });
  }

  function render(volunteer) {
    current = volunteer;
    var summary = volunteer.summary;
    $("d-name").textContent = volunteer.full_name;
    $("d-status").textContent = CC.label("volunteers.status", volunteer.review_status);
    $("d-status").setAttribute("data-status", volunteer.review_status);
    var fields = $("d-fields");
    CC.clear(fields);
    function field(key, value) { CC.addField(fields, t(key), value); }
    field("volunteers.field.phone", volunteer.phone);
    field("volunteers.field.id_number", volunteer.id_number);
    field("volunteers.field.team_id", volunteer.team_name);
    field("volunteers.field.community", volunteer.community);
    field("volunteers.field.skills", volunteer.skills.join("、"));
    field("volunteers.field.trainings", volunteer.trainings.map(function (item) {
      return item.name + "（" + item.completed_on + "，" + item.hours + " h）";
    }).join("；"));
    field("volunteers.field.certificates", volunteer.certificates.map(function (item) {
      return item.name + (item.number ? " " + item.number : "") + "（" + item.issued_on +
        (item.expires_on ? " – " + item.expires_on : "") + "）";
    }).join("；"));
    field("volunteers.reviewed", volunteer.reviewed_at ? t("volunteers.reviewed_by", { by: volunteer.reviewed_by || "—",
      at: when(volunteer.reviewed_at) }) + (volunteer.review_note ? " · " + volunteer.review_note : "")
      : t("volunteers.not_reviewed"));
    field("volunteers.col.service", servicesText(summary));
    field("volunteers.col.rating", summary.average_rating === null ? t("volunteers.no_rating")
      : t("volunteers.average", { rating: summary.average_rating, count: summary.evaluations }));
    field("volunteers.col.feedback", feedbackText(summary));
    field("volunteers.field.notes", volunteer.notes);
    $("vol-detail").hidden = false;
    $("s-served_on").value = $("s-served_on").value || today();
    $("f-given_on").value = $("f-given_on").value || today();
    loadServices();
    loadFeedback();
    loadPairings();
  }

  function refresh() {
    if (!current) return Promise.resolve();
    return api("GET", "/volunteers/" + current.id).then(function (result) {
      if (result.status === 200) render(result.body);
      search();
    });
  }

  $("review-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) return;
    var body = { status: $("r-status").value, note: orNull($("r-note").value) };
    api("POST", "/volunteers/" + current.id + "/review", body).then(function (result) {
      if (result.status !== 200) {
        showErrors($("review-form"), $("review-errors"), $("review-message"), result);
        return;
      }
      clearErrors($("review-form"), $("review-errors"));
      $("r-note").value = "";
      render(result.body);
      search();
      var status = CC.label("volunteers.status", result.body.review_status);
      say($("review-message"), t("volunteers.review.done", { status: status }), "good");
    });
  });

  function loadServices() {
    var list = $("service-list");
    api("GET", "/volunteers/" + current.id + "/service-records?limit=20").then(function (result) {
      CC.clear(list);
      if (result.status !== 200) return;
      result.body.items.forEach(function (item) {
        list.appendChild(el("li", item.served_on + " · " + item.hours + " h · " + item.description +
          (item.elder_id ? " · " + t("volunteers.elder_no", { id: item.elder_id }) : "")));
      });
      if (!list.firstChild) list.appendChild(el("li", t("volunteers.service.none"), { "class": "muted" }));
    });
  }

  $("service-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) return;
    var body = { served_on: $("s-served_on").value || null, hours: numberOrNull($("s-hours").value),
                 description: $("s-description").value, elder_id: numberOrNull($("s-elder_id").value) };
    api("POST", "/volunteers/" + current.id + "/service-records", body).then(function (result) {
      if (result.status !== 201) {
        showErrors($("service-form"), $("service-errors"), $("service-message"), result);
        return;
      }
      clearErrors($("service-form"), $("service-errors"));
      $("s-hours").value = "";
      $("s-description").value = "";
      say($("service-message"), t("volunteers.service.done"), "good");
      refresh();
    });
  });

  function syncRating() {
    var rated = $("f-kind").value === "evaluation";
    $("f-rating").disabled = !rated;
  }

  function loadFeedback() {
    var list = $("feedback-list");
    api("GET", "/volunteers/" + current.id + "/feedback?limit=20").then(function (result) {
      CC.clear(list);
      if (result.status !== 200) return;
      result.body.items.forEach(function (item) {
        list.appendChild(el("li", item.given_on + " · " + CC.label("volunteers.kind", item.kind) +
          (item.rating ? " · " + t("volunteers.rating", { rating: item.rating }) : "") + " · " + item.text,
          { "data-kind": item.kind }));
      });
      if (!list.firstChild) list.appendChild(el("li", t("volunteers.feedback.none"), { "class": "muted" }));
    });
  }

  $("f-kind").addEventListener("change", syncRating);
  $("feedback-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) return;
    var body = { kind: $("f-kind").value, text: $("f-text").value, given_on: $("f-given_on").value || null,
                 elder_id: numberOrNull($("f-elder_id").value) };
    if (!$("f-rating").disabled) body.rating = Number($("f-rating").value);
    api("POST", "/volunteers/" + current.id + "/feedback", body).then(function (result) {
      if (result.status !== 201) {
        showErrors($("feedback-form"), $("feedback-errors"), $("feedback-message"), result);
        return;
      }
      clearErrors($("feedback-form"), $("feedback-errors"));
      $("f-text").value = "";
      say($("feedback-message"), t("volunteers.feedback.done"), "good");
      refresh();
    });
  });

  function loadPairings() {
    var list = $("pairing-list");
    api("GET", "/volunteers/" + current.id + "/pairings").then(function (result) {
      CC.clear(list);
      if (result.status !== 200) return;
      result.body.items.forEach(function (pairing) {
        var item = el("li", null, { "data-elder-id": String(pairing.elder_id) });
        item.appendChild(el("span", t("volunteers.pair.item", { id: pairing.elder_id, name: pairing.elder_name,
          priority: pairing.priority }) + (pairing.community ? " · " + pairing.community : "")));
        var remove = el("button", t("volunteers.pair.unpair"), { type: "button", "class": "secondary small" });
        remove.addEventListener("click", function () { unpair(pairing); });
        item.appendChild(document.createTextNode(" "));
        item.appendChild(remove);
        list.appendChild(item);
      });
      if (!list.firstChild) list.appendChild(el("li", t("volunteers.pair.none"), { "class": "muted" }));
    });
  }

  function unpair(pairing) {
    api("DELETE", "/volunteers/" + current.id + "/pairings/" + pairing.elder_id).then(function (result) {
      if (result.status !== 200) { showErrors($("pair-search"), $("pair-errors"), $("pair-message"), result); return; }
      say($("pair-message"), t("volunteers.pair.unpaired", { name: pairing.elder_name }), "good");
      refresh();
    });
  }

  function pairWith(elder) {
    var body = { elder_id: elder.id };
    var priority = numberOrNull($("p-priority").value);
    if (priority !== null) body.priority = priority;
    api("POST", "/volunteers/" + current.id + "/pairings", body).then(function (result) {
      if (result.status !== 201) { showErrors($("pair-search"), $("pair-errors"), $("pair-message"), result); return; }
      clearErrors($("pair-search"), $("pair-errors"));
      CC.clear($("pair-results"));
      $("p-query").value = "";
      $("p-priority").value = "";
      say($("pair-message"), t("volunteers.pair.done", { name: result.body.elder_name }), "good");
      refresh();
    });
  }

  // An elder number finds that elder; a phone number (7+ digits) the elder with it or a contact's; else a name.
  $("pair-search").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) return;
    var query = $("p-query").value.trim();
    var results = $("pair-results");
    CC.clear(results);
    clearErrors($("pair-search"), $("pair-errors"));
    if (!query) { say($("pair-message"), t("volunteers.pair.find_hint"), "bad"); return; }
    var digits = query.replace(/[\s()+-]/g, "");
    var request = /^\d{1,9}$/.test(query)
      ? api("GET", "/elders/" + query).then(function (result) {
        return result.status === 200 ? { status: 200, body: { items: [result.body] } }
          : result.status === 404 ? { status: 200, body: { items: [] } } : result;
      })
      : api("GET", "/elders?limit=10&" + (/^\d{7,}$/.test(digits) ? "phone=" : "q=") + encodeURIComponent(query));
    request.then(function (result) {
      if (result.status !== 200) { showErrors($("pair-search"), $("pair-errors"), $("pair-message"), result); return; }
      result.body.items.forEach(function (elder) {
        var item = el("li", null, { "data-elder-id": String(elder.id) });
        item.appendChild(el("span", t("volunteers.pair.item_found", { id: elder.id, name: elder.full_name }) +
          (elder.community ? " · " + elder.community : "") + (elder.district ? " · " + elder.district : "")));
        var pair = el("button", t("volunteers.pair.submit"), { type: "button", "class": "small" });
        pair.addEventListener("click", function () { pairWith(elder); });
        item.appendChild(document.createTextNode(" "));
        item.appendChild(pair);
        results.appendChild(item);
      });
      say($("pair-message"), result.body.items.length ? "" : t("volunteers.pair.results_none"),
        result.body.items.length ? "" : "bad");
    });
  });

  $("vol-search").addEventListener("submit", search);
  $("vol-prev").addEventListener("click", function () { offset = Math.max(0, offset - PAGE); search(); });
  $("vol-next").addEventListener("click", function () { offset += PAGE; search(); });
  syncRating();
  loadTeams().then(function () { search(); });
})();
