// The service-provider registry page (seed 5.11): list providers by service and active, register or edit one with
// its fees per service and licence, its staff, a portal account, signing keys (the secret shown once) and its
// evaluation. Plain JavaScript over the REST API (/api/v1/providers…); common.js (window.CC) is loaded first.
// Every check is the API's: a refused form stays as typed and the API's messages are put next to the fields they
// name, so the page never disagrees with the server about what is valid.
(function () {
  "use strict";

  var config = CC.config, t = CC.t, el = CC.el, api = CC.api, say = CC.say, when = CC.when;
  var $ = function (id) { return document.getElementById(id); };
  var providers = [];   // the list as the API last answered it
  var current = null;   // the provider on screen (as the API answered it)
  var editing = null;   // null: the form registers a new provider; else the id it changes
  var editingStaff = null;  // null: the staff form adds a person; else the id it changes
  var staff = [];

  var orNull = CC.orNull, numberOrNull = CC.numberOrNull;

  function listOf(text) {
    return text.split(/[,，、;；\n]/).map(function (s) { return s.trim(); }).filter(function (s) { return s !== ""; });
  }

  function serviceNames(services) {
    return services.map(function (service) { return CC.label("common.service", service); }).join("、");
  }

  // ---- the API's errors, next to the fields they name -------------------------------------------------------

  // The input (or group) a field path names; a path into a list or a fee names its nearest tagged ancestor
  // (communities.2 -> the communities input, fees.repair -> that fee's price).
  function targetOf(form, field) {
    var node = form.querySelector('[data-field="' + field + '"]');
    if (!node && /^fees\.[a-z_]+$/.test(field)) node = form.querySelector('[data-field="' + field + '.price_yuan"]');
    while (!node && field.indexOf(".") > 0) {
      field = field.slice(0, field.lastIndexOf("."));
      node = form.querySelector('[data-field="' + field + '"]');
    }
    return node;
  }

  var clearErrors = CC.clearFieldErrors;

  // The API's list of violations. A fee for a service the provider does not offer is refused as a whole-body
  // error on registration ("fees for services not offered: repair") and under "fees"/"services" on a change:
  // either way it belongs next to that service's fee, so it is put there.
  function errorsOf(error) {
    var out = [];
    CC.errorItems(error).forEach(function (item) {
      var stray = /fees for services not offered: ([a-z_, ]+)/.exec(item.message || "");
      if (stray) {
        stray[1].split(",").map(function (s) { return s.trim(); }).filter(Boolean).forEach(function (service) {
          out.push({ field: "fees." + service, message: t("providers.fee_not_offered"), original: item.message });
        });
      } else {
        out.push(item);
      }
    });
    return out;
  }

  // A refused request: each named field marked and given its message beside it ("fees.repair.price_yuan" named
  // "收费 · 维修 · 价格（元）"); anything naming no field of the form is listed under it. What was typed stays.
  function showErrors(form, list, message, result) {
    CC.showFieldErrors(form, list, message, result, { fields: ["providers.field", "common.service"],
                                                      fix: "providers.fix_fields", items: errorsOf, target: targetOf });
  }

  // ---- licences ---------------------------------------------------------------------------------------------

  function addDays(iso, days) {
    var date = new Date(iso + "T00:00:00Z");
    date.setUTCDate(date.getUTCDate() + days);
    return date.toISOString().slice(0, 10);
  }

  // A licence is valid through its expiry day on the centre's calendar (the API refuses matching after it).
  function licenceState(expires) {
    if (!expires) return "none";
    if (expires < config.today) return "expired";
    return expires <= addDays(config.today, config.licenceWarningDays) ? "soon" : "valid";
  }

  function licenceText(provider) {
    var state = licenceState(provider.licence_expires_on);
    var parts = [];
    if (provider.licence_number) parts.push(provider.licence_number);
    if (provider.licence_expires_on) parts.push(t("providers.licence.until", { date: provider.licence_expires_on }));
    if (state === "expired" || state === "soon") parts.push(t("providers.licence." + state));
    return parts.length ? parts.join(" · ") : t("providers.licence.none");
  }

  function feeText(fee) {
    return t("providers.fee", { price: fee.price_yuan, unit: fee.unit || t("providers.unit_default") }) +
      (fee.note ? "（" + fee.note + "）" : "");
  }

  // ---- the list ---------------------------------------------------------------------------------------------

  function search(event) {
    if (event) event.preventDefault();
    var service = $("q-service").value;
    var path = "/providers" + (service ? "?service=" + encodeURIComponent(service) : "");
    return api("GET", path).then(function (result) {
      var body = $("prv-body");
      CC.clear(body);
      if (result.status !== 200) { say($("prv-list-message"), CC.errorText(result), "bad"); return; }
      providers = result.body.items;
      var active = $("q-active").value;  // the API filters by service only; active is chosen here
      var shown = providers.filter(function (p) { return active === "" || String(p.active) === active; });
      shown.forEach(function (provider) { body.appendChild(listRow(provider)); });
      $("prv-none").hidden = shown.length > 0;
      say($("prv-list-message"), shown.length ? t("providers.count", { count: shown.length }) : "");
    });
  }

  function listRow(provider) {
    var row = el("tr", null, { "data-provider-id": String(provider.id) });
    row.appendChild(el("td", provider.name));
    row.appendChild(el("td", serviceNames(provider.services)));
    row.appendChild(el("td", provider.communities.length ? provider.communities.join("、") : t("providers.citywide")));
    row.appendChild(el("td", [provider.contact_person, provider.phone].filter(Boolean).join(" · ") || "—"));
    row.appendChild(el("td", licenceText(provider), { "data-licence": licenceState(provider.licence_expires_on) }));
    row.appendChild(el("td", provider.rating === null ? t("providers.not_rated") : String(provider.rating)));
    row.appendChild(el("td", t("providers.active." + provider.active), { "data-active": String(provider.active) }));
    row.appendChild(CC.buttonCell(t("providers.open"), function () { showProvider(provider.id); }));
    return row;
  }

  // ---- the form: register or edit ---------------------------------------------------------------------------

  function feeRows() { return $("p-fees").tBodies[0].rows; }

  function openEditor(provider) {
    editing = provider ? provider.id : null;
    $("prv-editor-heading").textContent = provider ? t("providers.editor.edit", { name: provider.name })
      : t("providers.editor.new");
    var form = $("prv-form");
    form.reset();
    clearErrors(form, $("prv-form-errors"));
    say($("prv-form-message"), "");
    if (provider) {
      ["name", "phone", "contact_person", "address", "qualification", "licence_number", "licence_expires_on"]
        .forEach(function (name) { $("p-" + name).value = provider[name] || ""; });
      ["latitude", "longitude"].forEach(function (name) {
        $("p-" + name).value = provider[name] === null ? "" : String(provider[name]);
      });
      $("p-communities").value = provider.communities.join("、");
      $("p-active").checked = provider.active;
      Array.prototype.forEach.call(feeRows(), function (row) {
        var service = row.getAttribute("data-service");
        var fee = provider.fees[service];
        row.querySelector(".offered").checked = provider.services.indexOf(service) >= 0;
        row.querySelector(".price").value = fee ? String(fee.price_yuan) : "";
        row.querySelector(".unit").value = fee && fee.unit ? fee.unit : "";
        row.querySelector(".fee-note").value = fee && fee.note ? fee.note : "";
      });
    } else {
      $("prv-detail").hidden = true;
      current = null;
    }
    $("prv-editor").hidden = false;
    $("p-name").focus();
  }

  // The body as the API wants it: a fee goes with every row where something was typed, offered or not, so a fee
  // for a service not ticked is the API's refusal to show rather than silently dropped.
  function formBody() {
    var services = [], fees = {};
    Array.prototype.forEach.call(feeRows(), function (row) {
      var service = row.getAttribute("data-service");
      if (row.querySelector(".offered").checked) services.push(service);
      var price = row.querySelector(".price").value, unit = row.querySelector(".unit").value;
      var note = row.querySelector(".fee-note").value;
      if ((price + unit + note).trim() !== "") {
        fees[service] = { price_yuan: numberOrNull(price), unit: orNull(unit), note: orNull(note) };
      }
    });
    return {
      name: $("p-name").value.trim(),
      phone: orNull($("p-phone").value),
      contact_person: orNull($("p-contact_person").value),
      address: orNull($("p-address").value),
      latitude: numberOrNull($("p-latitude").value),
      longitude: numberOrNull($("p-longitude").value),
      qualification: orNull($("p-qualification").value),
      licence_number: orNull($("p-licence_number").value),
      licence_expires_on: $("p-licence_expires_on").value || null,
      communities: listOf($("p-communities").value),
      active: $("p-active").checked,
      services: services,
      fees: fees,
    };
  }

  $("prv-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var creating = editing === null;
    var request = creating ? api("POST", "/providers", formBody()) : api("PATCH", "/providers/" + editing, formBody());
    $("prv-save").disabled = true;
    request.then(function (result) {
      $("prv-save").disabled = false;
      if (result.status !== 200 && result.status !== 201) {
        showErrors($("prv-form"), $("prv-form-errors"), $("prv-form-message"), result);
        return;
      }
      $("prv-editor").hidden = true;
      showProvider(result.body.id).then(function () {
        say($("d-message"), t(creating ? "providers.created" : "providers.saved", { name: result.body.name }), "good");
      });
      search();
    });
  });

  $("prv-new").addEventListener("click", function () { openEditor(null); });
  $("prv-cancel").addEventListener("click", function () { $("prv-editor").hidden = true; });
  $("d-edit").addEventListener("click", function () { if (current) openEditor(current); });

  // ---- one provider: the entry, evaluation, staff, keys, portal account -------------------------------------

  function showProvider(id) {
    return api("GET", "/providers/" + id).then(function (result) {
      if (result.status !== 200) { say($("prv-list-message"), CC.errorText(result), "bad"); return; }
      var switched = !current || current.id !== result.body.id;
      if (switched) {
        hideSecret();
        resetStaffForm();
        [["account-form", "account-errors", "account-message"], ["staff-form", "staff-errors", "staff-message"]]
          .forEach(function (ids) { clearErrors($(ids[0]), $(ids[1])); say($(ids[2]), ""); });
        $("account-form").reset();
        say($("key-message"), "");
      }
      say($("d-message"), "");
      render(result.body);
      loadEvaluation();
      loadStaff();
      loadKeys();
      if (switched) $("prv-detail").scrollIntoView({ block: "start" });
    });
  }

  function render(provider) {
    current = provider;
    $("d-name").textContent = provider.name;
    $("d-active").textContent = t("providers.active." + provider.active);
    $("d-active").setAttribute("data-active", String(provider.active));
    var fields = $("d-fields");
    CC.clear(fields);
    function field(key, value, attrs) { CC.addField(fields, t(key), value, attrs); }
    field("providers.field.phone", provider.phone);
    field("providers.field.contact_person", provider.contact_person);
    field("providers.field.address", provider.address);
    field("providers.col.position", provider.latitude === null || provider.longitude === null ? null
      : provider.latitude + ", " + provider.longitude);
    field("providers.field.communities",
      provider.communities.length ? provider.communities.join("、") : t("providers.citywide"));
    field("providers.field.qualification", provider.qualification);
    field("providers.col.licence", licenceText(provider), { id: "d-licence",
      "data-licence": licenceState(provider.licence_expires_on) });
    field("providers.field.services", serviceNames(provider.services));
    field("providers.field.fees", Object.keys(provider.fees).map(function (service) {
      return CC.label("common.service", service) + " " + feeText(provider.fees[service]);
    }).join("；"), { id: "d-fees" });
    field("providers.field.rating", provider.rating === null ? t("providers.not_rated") : String(provider.rating));
    field("providers.col.updated", when(provider.updated_at));
    buildSkillBoxes(provider.services);
    $("prv-detail").hidden = false;
  }

  function loadEvaluation() {
    var list = $("eval-fields");
    var id = current.id;
    api("GET", "/providers/" + id + "/evaluation").then(function (result) {
      if (!current || current.id !== id) return;
      CC.clear(list);
      if (result.status !== 200) { list.appendChild(el("dd", CC.errorText(result))); return; }
      var figures = result.body;
      [["orders_closed", figures.orders_closed],
       ["average_satisfaction", figures.average_satisfaction === null ? t("providers.eval.no_satisfaction")
         : t("providers.eval.satisfaction", { average: figures.average_satisfaction, count: figures.rated_orders })],
       ["founded_complaints", figures.founded_complaints],
       ["supervision_cases", figures.supervision_cases],
       ["urgings", figures.urgings],
       ["rating", figures.rating === null ? t("providers.not_rated") : String(figures.rating)]]
        .forEach(function (pair) {
          list.appendChild(el("dt", t("providers.eval." + pair[0])));
          list.appendChild(el("dd", String(pair[1]), { "data-figure": pair[0] }));
        });
    });
  }

  // ---- staff ------------------------------------------------------------------------------------------------

  function buildSkillBoxes(services) {
    var boxes = $("s-skill-boxes");
    var chosen = checkedSkills();
    CC.clear(boxes);
    services.forEach(function (service) {
      var label = el("label", null, { "class": "check" });
      var box = el("input", null, { type: "checkbox", value: service, id: "s-skill-" + service });
      box.checked = chosen.indexOf(service) >= 0;
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + CC.label("common.service", service)));
      boxes.appendChild(label);
    });
  }

  function checkedSkills() {
    return Array.prototype.filter.call($("s-skill-boxes").querySelectorAll("input"), function (box) {
      return box.checked;
    }).map(function (box) { return box.value; });
  }

  function resetStaffForm() {
    editingStaff = null;
    $("staff-form").reset();
    $("staff-form-heading").textContent = t("providers.staff.add");
    $("staff-submit").textContent = t("providers.staff.submit");
    $("staff-cancel").hidden = true;
  }

  function loadStaff() {
    var id = current.id;
    return api("GET", "/providers/" + id + "/staff").then(function (result) {
      if (!current || current.id !== id) return;
      var body = $("staff-body");
      CC.clear(body);
      if (result.status !== 200) { say($("staff-message"), CC.errorText(result), "bad"); return; }
      staff = result.body.items;
      staff.forEach(function (person) { body.appendChild(staffRow(person)); });
      $("staff-none").hidden = staff.length > 0;
    });
  }

  function staffRow(person) {
    var row = el("tr", null, { "data-staff-id": String(person.id), "data-active": String(person.active) });
    row.appendChild(el("td", person.name));
    row.appendChild(el("td", person.phone || "—"));
    row.appendChild(el("td", person.skills.length ? serviceNames(person.skills) : t("providers.staff.any_skill")));
    row.appendChild(el("td", person.certificate || "—"));
    row.appendChild(el("td", t("providers.staff.active." + person.active)));
    var cell = el("td", null, { "class": "actions" });
    var edit = el("button", t("providers.edit_short"),
      { type: "button", "class": "secondary small", "data-action": "edit" });
    edit.addEventListener("click", function () { editStaff(person); });
    var toggle = el("button", t(person.active ? "providers.staff.deactivate" : "providers.staff.reactivate"),
      { type: "button", "class": "secondary small", "data-action": person.active ? "deactivate" : "reactivate" });
    toggle.addEventListener("click", function () { setStaffActive(person, !person.active); });
    cell.appendChild(edit);
    cell.appendChild(toggle);
    row.appendChild(cell);
    return row;
  }

  function editStaff(person) {
    clearErrors($("staff-form"), $("staff-errors"));
    say($("staff-message"), "");
    editingStaff = person.id;
    $("s-name").value = person.name;
    $("s-phone").value = person.phone || "";
    $("s-certificate").value = person.certificate || "";
    Array.prototype.forEach.call($("s-skill-boxes").querySelectorAll("input"), function (box) {
      box.checked = person.skills.indexOf(box.value) >= 0;
    });
    $("staff-form-heading").textContent = t("providers.staff.edit", { name: person.name });
    $("staff-submit").textContent = t("providers.save");
    $("staff-cancel").hidden = false;
    $("s-name").focus();
  }

  function setStaffActive(person, active) {
    clearErrors($("staff-form"), $("staff-errors"));
    api("PATCH", "/providers/" + current.id + "/staff/" + person.id, { active: active }).then(function (result) {
      if (result.status !== 200) { showErrors($("staff-form"), $("staff-errors"), $("staff-message"), result); return; }
      say($("staff-message"),
        t(active ? "providers.staff.reactivated" : "providers.staff.deactivated", { name: person.name }), "good");
      loadStaff();
    });
  }

  $("staff-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) return;
    var body = { name: $("s-name").value.trim(), phone: orNull($("s-phone").value), skills: checkedSkills(),
                 certificate: orNull($("s-certificate").value) };
    var adding = editingStaff === null;
    var request = adding ? api("POST", "/providers/" + current.id + "/staff", body)
      : api("PATCH", "/providers/" + current.id + "/staff/" + editingStaff, body);
    request.then(function (result) {
      if (result.status !== 200 && result.status !== 201) {
        showErrors($("staff-form"), $("staff-errors"), $("staff-message"), result);
        return;
      }
      clearErrors($("staff-form"), $("staff-errors"));
      resetStaffForm();
      say($("staff-message"), t(adding ? "providers.staff.added" : "providers.staff.saved", { name: result.body.name }),
        "good");
      loadStaff();
    });
  });
  $("staff-cancel").addEventListener("click", function () {
    clearErrors($("staff-form"), $("staff-errors"));
    say($("staff-message"), "");
    resetStaffForm();
  });

  // ---- signing keys: the secret is in the creation's answer only ---------------------------------------------

  function hideSecret() {
    $("key-secret-id").value = "";
    $("key-secret-value").value = "";
    say($("key-copy-message"), "");
    $("key-secret").hidden = true;
  }

  function loadKeys() {
    var id = current.id;
    return api("GET", "/providers/" + id + "/api-keys").then(function (result) {
      if (!current || current.id !== id) return;
      var body = $("key-body");
      CC.clear(body);
      if (result.status !== 200) { say($("key-message"), CC.errorText(result), "bad"); return; }
      result.body.items.forEach(function (key) {
        var row = el("tr", null, { "data-key-id": key.key_id, "data-revoked": String(key.revoked_at !== null) });
        row.appendChild(el("td", key.key_id, { "class": "mono" }));
        row.appendChild(el("td", when(key.created_at)));
        row.appendChild(el("td", key.revoked_at ? t("providers.keys.revoked_at", { at: when(key.revoked_at) })
          : t("providers.keys.in_use")));
        var cell = el("td");
        if (!key.revoked_at) {
          var revoke = el("button", t("providers.keys.revoke"), { type: "button", "class": "danger small" });
          revoke.addEventListener("click", function () { revokeKey(key.key_id); });
          cell.appendChild(revoke);
        }
        row.appendChild(cell);
        body.appendChild(row);
      });
      $("key-none").hidden = result.body.items.length > 0;
    });
  }

  function revokeKey(keyId) {
    if (!window.confirm(t("providers.keys.revoke_confirm", { key: keyId }))) return;
    api("DELETE", "/providers/" + current.id + "/api-keys/" + encodeURIComponent(keyId)).then(function (result) {
      if (result.status !== 200) { say($("key-message"), CC.errorText(result), "bad"); return; }
      if ($("key-secret-id").value === keyId) hideSecret();
      say($("key-message"), t("providers.keys.revoked", { key: keyId }), "good");
      loadKeys();
    });
  }

  $("key-create").addEventListener("click", function () {
    if (!current) return;
    var id = current.id;
    $("key-create").disabled = true;
    api("POST", "/providers/" + id + "/api-keys").then(function (result) {
      $("key-create").disabled = false;
      if (result.status !== 201) { say($("key-message"), CC.errorText(result), "bad"); return; }
      if (!current || current.id !== id) return;
      $("key-secret-id").value = result.body.key_id;
      $("key-secret-value").value = result.body.secret;
      say($("key-copy-message"), "");
      $("key-secret").hidden = false;
      say($("key-message"), t("providers.keys.created", { key: result.body.key_id }), "good");
      $("key-secret-value").focus();
      $("key-secret-value").select();
      loadKeys();
    });
  });

  $("key-secret-value").addEventListener("focus", function () { this.select(); });

  // The clipboard API needs a secure context (https or localhost); elsewhere the selected text is copied the
  // old way, and failing that the operator is told to press Ctrl+C on the selection.
  $("key-copy").addEventListener("click", function () {
    var input = $("key-secret-value");
    var copied = function () { say($("key-copy-message"), t("providers.keys.copied"), "good"); };
    var manual = function () {
      input.focus();
      input.select();
      var done;
      try { done = document.execCommand("copy"); } catch { done = false; }
      if (done) copied(); else say($("key-copy-message"), t("providers.keys.copy_manually"), "bad");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(copied, manual);
    } else {
      manual();
    }
  });
  $("key-done").addEventListener("click", hideSecret);

  // ---- portal account ---------------------------------------------------------------------------------------

  $("account-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) return;
    var body = { username: $("a-username").value.trim(), password: $("a-password").value,
                 display_name: orNull($("a-display_name").value) };
    api("POST", "/providers/" + current.id + "/accounts", body).then(function (result) {
      if (result.status !== 201) {
        showErrors($("account-form"), $("account-errors"), $("account-message"), result);
        return;
      }
      clearErrors($("account-form"), $("account-errors"));
      $("account-form").reset();
      say($("account-message"), t("providers.account.done", { username: result.body.username }), "good");
    });
  });

  $("prv-filter").addEventListener("submit", search);
  $("q-service").addEventListener("change", function () { search(); });
  $("q-active").addEventListener("change", function () { search(); });
  search();
})();
