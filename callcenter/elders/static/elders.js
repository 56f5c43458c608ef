// The elders registry page: find elders, register or edit a file, delete one without history, and import the
// civil-affairs roster with a progress bar. Plain JavaScript over the REST API (/api/v1/elders…); common.js
// (window.CC) is loaded first. Every check is the API's: a refused form stays as typed and its fields are marked
// with the API's messages, so the page never disagrees with the server about what is valid.
(function () {
  "use strict";

  var config = CC.config, t = CC.t, el = CC.el, api = CC.api, say = CC.say, errorText = CC.errorText;
  var $ = function (id) { return document.getElementById(id); };
  var PAGE = 20;
  var POLL_MS = 500;
  var FIELDS = ["full_name", "id_number", "gender", "birth_date", "phone", "living_situation", "address",
                "community", "district", "care_level", "notes"];
  var offset = 0;
  var editing = null;  // null: the form registers a new elder; else the elder being changed (as the API gave it)
  var initial = {};  // the form's values when it was opened: a change sends only what the operator changed
  var newestSearch = 0;  // only the newest search's answer is shown (see search())

  function gender(value) {
    if (value === "male") return "男";
    if (value === "female") return "女";
    return value || "";
  }

  // ---- the API's field errors on the form -------------------------------------------------------------------

  function clearErrors() { CC.clearFieldErrors($("eld-form"), $("eld-form-errors")); }

  function showErrors(result) {
    CC.showFieldErrors($("eld-form"), $("eld-form-errors"), $("eld-form-message"), result,
                       { fields: "elders.field", fix: "elders.fix_fields" });
  }

  // ---- the list: summaries (numbers masked); a file is read, and audited, only when opened --------------------

  function search(event) {
    if (event) { event.preventDefault(); offset = 0; }
    var query = CC.query({ limit: PAGE, offset: offset, q: $("q-text").value.trim(), phone: $("q-phone").value.trim(),
                           community: $("q-community").value.trim() });
    // Searches overlap (an import finishing refreshes the list while the operator searches): an older, slower
    // answer must not replace the newer one on screen.
    var mine = ++newestSearch;
    return api("GET", "/elders?" + query).then(function (result) {
      if (mine !== newestSearch) return;
      var body = $("eld-body");
      CC.clear(body);
      if (result.status !== 200) { say($("eld-list-message"), errorText(result), "bad"); return; }
      say($("eld-list-message"), "");
      result.body.items.forEach(function (elder) {
        var row = el("tr", null, { "data-elder-id": String(elder.id) });
        row.appendChild(el("td", elder.full_name));
        row.appendChild(el("td", elder.id_number_masked || ""));
        row.appendChild(el("td", gender(elder.gender)));
        row.appendChild(el("td", elder.birth_year === null ? "" : String(elder.birth_year)));
        row.appendChild(el("td", elder.phone_masked || ""));
        row.appendChild(el("td", elder.community || ""));
        row.appendChild(el("td", CC.label("common.living", elder.living_situation, "")));
        row.appendChild(CC.buttonCell(config.mayWrite ? t("elders.edit") : t("elders.view"),
                                      function () { openFile(elder.id); }, {}, { "class": "actions" }));
        body.appendChild(row);
      });
      var total = result.body.total;
      $("eld-none").hidden = total > 0;
      $("eld-page-info").textContent = total ? t("elders.page", { from: offset + 1,
        to: offset + result.body.items.length, total: total }) : "";
      $("eld-prev").disabled = offset === 0;
      $("eld-next").disabled = offset + PAGE >= total;
    });
  }

  $("eld-search").addEventListener("submit", search);
  $("eld-prev").addEventListener("click", function () { offset = Math.max(0, offset - PAGE); search(); });
  $("eld-next").addEventListener("click", function () { offset += PAGE; search(); });

  // ---- register, change, delete -----------------------------------------------------------------------------

  function formValue(field) {
    var value = $("e-" + field).value.trim();
    if (value === "") return null;
    if (field === "care_level") return Number(value);
    return value;
  }

  // The file as the API shows it to this account: the resident ID masked (unless an agent is on a live call with
  // the elder), its full value only through the audited reveal below.
  function openFile(id) {
    return api("GET", "/elders/" + id).then(function (result) {
      if (result.status !== 200) { say($("eld-list-message"), errorText(result), "bad"); return; }
      openEditor(result.body);
    });
  }

  function openEditor(elder) {
    editing = elder;
    clearErrors();
    say($("eld-form-message"), "");
    showReveal(elder);
    $("eld-editor-heading").textContent = elder ? t("elders.editing", { name: elder.full_name }) : t("elders.new");
    FIELDS.forEach(function (field) {
      var value = elder ? elder[field] : null;
      if (field === "gender") value = gender(value);
      $("e-" + field).value = value === null || value === undefined ? "" : String(value);
    });
    initial = {};
    FIELDS.forEach(function (field) { initial[field] = formValue(field); });
    if ($("eld-delete")) $("eld-delete").hidden = !elder;
    Array.prototype.forEach.call($("eld-form").elements, function (node) {
      // Closing, and revealing with a reason (every reader may), stay usable for those who only read.
      if (node.id !== "eld-cancel" && !node.closest(".reveal")) node.disabled = !config.mayWrite;
    });
    $("eld-editor").hidden = false;
    $("e-full_name").focus();
    announce(elder);
  }

  function closeEditor() {
    editing = null;
    $("eld-editor").hidden = true;
    announce(null);
  }

  // Other domains' sections of the file (the map, the trend charts: contract.PageSection) follow the elder shown:
  // "cc:elder-opened" with the file as the API gave it (again after a save), "cc:elder-closed" when none is.
  function announce(elder) {
    document.dispatchEvent(elder ? new CustomEvent("cc:elder-opened", { detail: { elder: elder } })
      : new CustomEvent("cc:elder-closed"));
  }

  // A section changed the open file through its own API (the health record's assessment sets the care level):
  // "cc:elder-changed" with {elder_id, changes: {field: value}}. The form shows the new values, which a save then
  // does not send as the operator's change.
  document.addEventListener("cc:elder-changed", function (event) {
    var detail = event.detail;
    if (!editing || editing.id !== detail.elder_id) return;
    Object.keys(detail.changes).forEach(function (field) {
      if (FIELDS.indexOf(field) < 0) return;
      var value = detail.changes[field];
      editing[field] = value;
      $("e-" + field).value = value === null || value === undefined ? "" : String(value);
      initial[field] = formValue(field);
    });
  });

  // ---- the masked resident ID: "show full" asks for a reason; the API audits the reveal ----------------------

  function showReveal(elder) {
    var masked = !!elder && (elder.masked_fields || []).indexOf("id_number") >= 0;
    $("e-reveal").hidden = !masked;
    $("reveal-box").hidden = true;
    $("reveal-reason").value = "";
    say($("reveal-message"), "");
  }

  function reveal() {
    var reason = $("reveal-reason").value.trim();
    if (reason.length < 4) { say($("reveal-message"), t("elders.reveal.reason_needed"), "bad"); return; }
    var elder = editing;
    api("POST", "/elders/" + elder.id + "/reveal", { reason: reason, fields: ["id_number"] }).then(function (result) {
      if (editing !== elder) return;  // another file was opened meanwhile
      if (result.status !== 200) { say($("reveal-message"), errorText(result), "bad"); return; }
      $("e-id_number").value = result.body.id_number || "";
      initial.id_number = formValue("id_number");  // shown, not changed: a save does not send it
      $("reveal-box").hidden = true;
      $("e-reveal").hidden = true;
      say($("reveal-message"), t("elders.reveal.done"), "good");
    });
  }

  $("e-reveal").addEventListener("click", function () {
    $("reveal-box").hidden = false;
    say($("reveal-message"), "");
    $("reveal-reason").focus();
  });
  $("reveal-submit").addEventListener("click", reveal);
  $("reveal-reason").addEventListener("keydown", function (event) {
    if (event.key === "Enter") { event.preventDefault(); reveal(); }  // not the file's form
  });

  if ($("eld-new")) $("eld-new").addEventListener("click", function () { openEditor(null); });
  $("eld-cancel").addEventListener("click", closeEditor);

  $("eld-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var body = {};
    FIELDS.forEach(function (field) {
      var value = formValue(field);
      if (!editing) { if (value !== null) body[field] = value; } else if (value !== initial[field]) body[field] = value;
    });
    if (editing && Object.keys(body).length === 0) { say($("eld-form-message"), t("elders.no_change")); return; }
    var request = editing ? api("PATCH", "/elders/" + editing.id, body) : api("POST", "/elders", body);
    request.then(function (result) {
      if (result.status !== 200 && result.status !== 201) { showErrors(result); return; }
      clearErrors();
      openEditor(result.body);
      say($("eld-form-message"), t(result.status === 201 ? "elders.created" : "elders.saved",
        { name: result.body.full_name }), "good");
      search();
    });
  });

  if ($("eld-delete")) {
    $("eld-delete").addEventListener("click", function () {
      if (!editing || !window.confirm(t("elders.delete_confirm", { name: editing.full_name }))) return;
      var name = editing.full_name;
      api("DELETE", "/elders/" + editing.id).then(function (result) {
        if (result.status !== 200) { say($("eld-form-message"), errorText(result), "bad"); return; }
        closeEditor();
        say($("eld-list-message"), t("elders.deleted", { name: name }), "good");
        search();
      });
    });
  }

  // ---- the roster import ------------------------------------------------------------------------------------

  var polling = null;

  function showImport(job) {
    $("import-state").hidden = false;
    var progress = $("import-progress");
    progress.max = Math.max(job.total_rows, 1);
    progress.value = job.status === "running" ? job.processed_rows : progress.max;
    var status = $("import-status");
    if (job.status === "running") {
      say(status, job.total_rows && job.processed_rows >= job.total_rows ? t("elders.import.writing")
        : t("elders.import.running", { done: job.processed_rows, total: job.total_rows }));
    } else if (job.status === "done") {
      say(status, t(job.dry_run ? "elders.import.done_dry" : "elders.import.done"), "good");
    } else {
      say(status, t("elders.import.failed", { error: job.error || "" }), "bad");
    }
    $("count-total").textContent = String(job.total_rows);
    $("count-created").textContent = String(job.created_count);
    $("count-updated").textContent = String(job.updated_count);
    $("count-unchanged").textContent = String(job.unchanged_count);
    $("count-rejected").textContent = String(job.rejected_count);
    var list = $("import-rejected");
    CC.clear(list);
    job.rejected_preview.forEach(function (item) {
      var reasons = Object.keys(item.errors).map(function (field) {
        return CC.label("elders.field", field) + ": " + item.errors[field];
      });
      list.appendChild(el("li", t("elders.import.row", { row: item.row }) + " " + reasons.join("; ")));
    });
    var report = $("import-report");
    report.hidden = !(job.status === "done" && job.rejected_count > 0);
    report.setAttribute("data-import-id", String(job.id));
  }

  function poll(id) {
    api("GET", "/elders/imports/" + id).then(function (result) {
      if (result.status !== 200) {
        say($("import-message"), errorText(result), "bad");
        polling = null;
        $("import-submit").disabled = false;
        return;
      }
      showImport(result.body);
      if (result.body.status === "running") { polling = setTimeout(function () { poll(id); }, POLL_MS); return; }
      polling = null;
      $("import-submit").disabled = false;
      if (result.body.status === "done" && !result.body.dry_run) search();
    });
  }

  $("import-form") && $("import-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var file = $("import-file").files[0];
    if (!file) { say($("import-message"), t("elders.import.choose"), "bad"); return; }
    if (polling) clearTimeout(polling);
    say($("import-message"), "");
    $("import-submit").disabled = true;
    var query = "?filename=" + encodeURIComponent(file.name) + "&dry_run=" + ($("import-dry-run").checked ? "true"
      : "false");
    fetch("/api/v1/elders/imports" + query, {
      method: "POST", cache: "no-store", body: file,
      headers: { "Authorization": "Bearer " + config.token, "Content-Type": "application/octet-stream" }
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        return { status: response.status, body: body };
      });
    }, function () { return { status: 0, body: null }; }).then(function (result) {
      if (result.status === 401) { window.location.assign("/login"); return; }
      if (result.status !== 202) {
        $("import-submit").disabled = false;
        say($("import-message"), errorText(result), "bad");
        return;
      }
      showImport(result.body);
      poll(result.body.id);
    });
  });

  // The report is behind the bearer token, which a plain link cannot send: fetch it, then save it from memory.
  $("import-report") && $("import-report").addEventListener("click", function () {
    var id = this.getAttribute("data-import-id");
    fetch("/api/v1/elders/imports/" + id + "/rejected", {
      cache: "no-store", headers: { "Authorization": "Bearer " + config.token }
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      var name = "rejected-" + id + ".csv";
      var match = /filename\*=UTF-8''([^;]+)/.exec(response.headers.get("Content-Disposition") || "");
      if (match) name = decodeURIComponent(match[1]);
      return response.blob().then(function (blob) {
        var link = el("a", null, { href: URL.createObjectURL(blob), download: name });
        document.body.appendChild(link);
        link.click();
        setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
      });
    }).catch(function (error) {
      say($("import-message"), t("common.error.generic", { message: error.message }), "bad");
    });
  });

  search();
})();
