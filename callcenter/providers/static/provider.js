// The provider portal (seed 6.3): the orders dispatched to this account's provider, one order with the elder's
// contact, and buttons for exactly the steps the API allows now (accept, decline, assign staff, start on site, the
// receipt). Plain JavaScript, no build step; common.js (window.CC) is loaded first. Every step sends the version
// read: a 409 stale_version reloads the order and says someone else changed it; a 422 is shown at its field.
// /provider/ws pushes a notice when an order is dispatched here (or sent back, or cancelled): a toast, then the
// list is read again.
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, errorText = CC.errorText, when = CC.when;
  var $ = function (id) { return document.getElementById(id); };
  var current = null;  // the order shown, as the API last answered it
  var fresh = {};  // ids of orders a notice announced since the page was opened: marked in the list
  var staffOf = {};  // provider id -> its staff, read once
  var located = null;  // {latitude, longitude} when the staff member shared the position for "start"
  var toastTimer = null;

  // A datetime-local value (the browser's local time) for ``date``.
  function localInput(date) {
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return date.getFullYear() + "-" + two(date.getMonth() + 1) + "-" + two(date.getDate()) + "T" +
      two(date.getHours()) + ":" + two(date.getMinutes());
  }

  function toast(text) {
    var node = $("toast");
    node.textContent = text;
    node.hidden = false;
    if (toastTimer) clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { node.hidden = true; }, 10000);
  }

  // Newest dispatch first. The list API orders by urgency and its items carry no dispatch time yet, so the last
  // change stands in for it until they do (a dispatch is the last change of an order that has just arrived).
  function newestFirst(a, b) {
    var ta = Date.parse(a.dispatched_at || a.updated_at), tb = Date.parse(b.dispatched_at || b.updated_at);
    return tb - ta || b.id - a.id;
  }

  function load() {
    var status = $("f-status").value;
    var path = "/work-orders?limit=200" + (status ? "&status=" + encodeURIComponent(status) : "");
    return api("GET", path).then(function (result) {
      var body = $("orders-body");
      if (result.status !== 200) { say($("orders-message"), errorText(result), "bad"); return; }
      CC.clear(body);
      var items = result.body.items.slice().sort(newestFirst);
      items.forEach(function (item) {
        var row = el("tr", null, { "data-order-id": String(item.id) });
        if (current && current.id === item.id) row.classList.add("current");
        if (fresh[item.id]) row.classList.add("fresh");
        row.appendChild(el("td", item.number));
        row.appendChild(el("td", item.title));
        row.appendChild(el("td", CC.label("common.service", item.service)));
        row.appendChild(el("td", CC.label("common.order_status", item.status), { "class": "order-status" }));
        row.appendChild(el("td", when(item.due_at)));
        row.appendChild(CC.buttonCell(t("provider.open"), function () { show(item.id); }));
        body.appendChild(row);
      });
      $("orders-count").textContent = String(result.body.total);
      $("orders-none").hidden = items.length > 0;
      say($("orders-message"), result.body.total > items.length
        ? t("provider.more", { shown: items.length, total: result.body.total }) : "");
    });
  }

  function show(id) {
    return api("GET", "/work-orders/" + id).then(function (result) {
      if (result.status === 404) { gone(); return; }
      if (result.status !== 200) { say($("order-message"), errorText(result), "bad"); return; }
      render(result.body);
    });
  }

  // The order is no longer this provider's (declined and re-matched, or taken back by the centre).
  function gone() {
    current = null;
    $("order").hidden = true;
    say($("orders-message"), t("provider.gone"), "bad");
    load();
  }

  function render(order) {
    var same = current !== null && current.id === order.id;
    current = order;
    var elder = order.elder || {};
    $("order").hidden = false;
    $("order-number").textContent = order.number;
    $("order-title").textContent = order.title;
    $("order-status").textContent = CC.label("common.order_status", order.status);
    $("order-service").textContent = CC.label("common.service", order.service);
    $("order-due").textContent = when(order.due_at);
    $("order-elder").textContent = elder.full_name || "—";
    $("order-phone").textContent = elder.phone || "—";
    $("order-address").textContent = [elder.community, elder.address].filter(Boolean).join(" ") || "—";
    $("order-location").textContent = order.location_text || "—";
    $("order-description").textContent = order.description || "—";
    $("order-staff").textContent = "—";
    if (order.staff_id) {
      staff(order.provider_id).then(function (people) {
        var person = people.filter(function (p) { return p.id === order.staff_id; })[0];
        if (current === order) $("order-staff").textContent = person ? person.name : "#" + order.staff_id;
      });
    }
    Array.prototype.forEach.call(document.querySelectorAll("#actions button"), function (button) {
      button.hidden = order.allowed_actions.indexOf(button.getAttribute("data-action")) < 0;
    });
    // A form being filled in stays open with what was typed (after a reload for a concurrent change, too) while
    // its step is still allowed; another order, or a step no longer possible, closes it.
    Array.prototype.forEach.call(document.querySelectorAll("form.step"), function (form) {
      if (!same || order.allowed_actions.indexOf(form.getAttribute("data-action")) < 0) form.hidden = true;
      clearErrors(form);
    });
    var trail = $("order-trail");
    CC.clear(trail);
    order.events.forEach(function (event) {
      var text = when(event.at) + " · " + event.actor_label + " · " + CC.label("provider.event", event.action);
      if (event.to_status && event.to_status !== event.from_status) {
        text += " → " + CC.label("common.order_status", event.to_status);
      }
      var note = event.details && (event.details.reason || event.details.staff);
      if (note) text += "（" + note + "）";
      trail.appendChild(el("li", text));
    });
    Array.prototype.forEach.call(document.querySelectorAll("#orders-body tr"), function (row) {
      row.classList.toggle("current", row.getAttribute("data-order-id") === String(order.id));
    });
  }

  function closeForms() {
    Array.prototype.forEach.call(document.querySelectorAll("form.step"), function (form) {
      form.hidden = true;
      clearErrors(form);
    });
  }

  function clearErrors(form) {
    Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (node) { node.textContent = ""; });
    Array.prototype.forEach.call(form.querySelectorAll(".invalid"), function (node) {
      node.classList.remove("invalid");
      node.removeAttribute("aria-invalid");
    });
  }

  // A message at its field's slot in ``form`` (and the field marked), or in the order's message line.
  function fieldError(form, field, message) {
    var slot = form && field ? form.querySelector('.field-error[data-field="' + field + '"]') : null;
    if (!slot) { say($("order-message"), t("common.error.generic", { message: message }), "bad"); return; }
    slot.textContent = message;
    var name = field.split(".").pop();
    var input = form.querySelector('[name="' + name + '"]');
    if (input) {
      input.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
    }
  }

  // The staff of the order's provider (the portal account reads its own provider's staff).
  function staff(providerId) {
    if (staffOf[providerId]) return Promise.resolve(staffOf[providerId]);
    return api("GET", "/providers/" + providerId + "/staff").then(function (result) {
      if (result.status !== 200) return [];
      staffOf[providerId] = result.body.items;
      return result.body.items;
    });
  }

  function openForm(action) {
    closeForms();
    say($("order-message"), "");
    var form = document.querySelector('form.step[data-action="' + action + '"]');
    if (action === "assign") fillStaff(form);
    if (action === "start") {
      $("start-at").defaultValue = $("start-at").value = localInput(new Date());
      located = null;
      $("start-locate").checked = false;
      $("start-location").textContent = "";
    }
    form.hidden = false;
    var first = form.querySelector("textarea, select, input");
    if (first) first.focus();
  }

  function fillStaff(form) {
    var select = form.querySelector("select");
    CC.clear(select);
    select.appendChild(el("option", t("provider.choose"), { value: "" }));
    var order = current;
    staff(order.provider_id).then(function (people) {
      people.filter(function (p) {
        return p.active && (!p.skills.length || p.skills.indexOf(order.service) >= 0);
      }).forEach(function (person) {
        var option = el("option", person.name + (person.phone ? " · " + person.phone : ""),
                        { value: String(person.id) });
        if (person.id === order.staff_id) option.selected = true;
        select.appendChild(option);
      });
      if (select.options.length === 1) fieldError(form, "staff_id", t("provider.no_staff"));
    });
  }

  // What the form's own constraints catch (required, a number's range) is said here, in the page's language,
  // at the field; everything else the API checks and names (a 422 at its field).
  function invalidFields(form) {
    var wrong = Array.prototype.filter.call(form.querySelectorAll("input, select, textarea"), function (input) {
      var empty = input.required && !input.value.trim();
      var message = empty ? t("provider.required") : input.validity.valid ? null
        : input.type === "number" ? t("provider.range", { min: input.min, max: input.max }) : input.validationMessage;
      if (!message) return false;
      var slot = form.querySelector('.field-error[data-field$="' + input.name + '"]');
      if (slot) slot.textContent = message;
      input.classList.add("invalid");
      input.setAttribute("aria-invalid", "true");
      return true;
    });
    if (wrong.length) wrong[0].focus();
    return wrong.length > 0;
  }

  var DONE = { accept: "provider.done.accept", decline: "provider.done.decline", assign: "provider.done.assign",
               start: "provider.done.start", finish: "provider.done.finish" };

  function act(action, fields, form) {
    var order = current;
    var body = { action: action, version: order.version };
    Object.keys(fields).forEach(function (name) { body[name] = fields[name]; });
    if (form) clearErrors(form);
    return api("POST", "/work-orders/" + order.id + "/actions", body).then(function (result) {
      if (result.status === 200) {
        if (form) {  // done: the next time it opens, it is empty
          form.reset();
          form.hidden = true;
        }
        if (result.body.status === "under_review" && !result.body.provider_id) {  // declined: no longer ours
          current = null;
          $("order").hidden = true;
          say($("orders-message"), t(DONE[action]), "good");
        } else {
          render(result.body);
          say($("order-message"), t(DONE[action]), "good");
        }
        load();
        return;
      }
      var error = (result.body && result.body.error) || {};
      if (result.status === 409 && error.code === "stale_version") {
        show(order.id).then(function () { say($("order-message"), t("provider.stale"), "bad"); });
      } else if (result.status === 409) {
        show(order.id).then(function () { say($("order-message"), errorText(result), "bad"); });
      } else if (result.status === 422) {
        CC.errorItems(error).forEach(function (item) {
          fieldError(form, item.field, item.message);
        });
      } else if (result.status === 404) {
        gone();
      } else {
        say($("order-message"), errorText(result), "bad");
      }
    });
  }

  function locate() {
    var box = $("start-locate");
    located = null;
    $("start-location").textContent = "";
    if (!box.checked) return;
    if (!navigator.geolocation) {
      box.checked = false;
      $("start-location").textContent = t("provider.locate_unavailable");
      return;
    }
    $("start-location").textContent = t("provider.locating");
    navigator.geolocation.getCurrentPosition(function (position) {
      located = { latitude: position.coords.latitude, longitude: position.coords.longitude };
      $("start-location").textContent = t("provider.located", {
        latitude: located.latitude.toFixed(5), longitude: located.longitude.toFixed(5) });
    }, function () {
      box.checked = false;
      $("start-location").textContent = t("provider.locate_refused");
    }, { timeout: 15000, maximumAge: 60000 });
  }

  function number(value) { return value === "" ? null : Number(value); }

  $("orders-filter").addEventListener("submit", function (event) { event.preventDefault(); load(); });
  $("f-status").addEventListener("change", load);
  $("btn-refresh").addEventListener("click", load);
  $("btn-accept").addEventListener("click", function () { act("accept", {}, null); });
  ["decline", "assign", "start", "finish"].forEach(function (action) {
    $("btn-" + action).addEventListener("click", function () { openForm(action); });
  });
  $("start-locate").addEventListener("change", locate);
  $("toast").addEventListener("click", function () { $("toast").hidden = true; });

  $("form-decline").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    if (invalidFields(form)) return;
    act("decline", { reason: $("decline-reason").value.trim() }, form);
  });
  $("form-assign").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    if (invalidFields(form)) return;
    act("assign", { staff_id: Number($("assign-staff").value) }, form);
  });
  $("form-start").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    if (invalidFields(form)) return;
    var fields = {};
    // Left at the time the form was opened: "now" is the server's (a minute-rounded time could fall before the
    // acceptance a moment ago). Changed: the time given.
    if ($("start-at").value !== $("start-at").defaultValue) {
      var at = new Date($("start-at").value);
      if (isNaN(at.getTime())) { fieldError(form, "at", t("provider.required")); return; }
      fields.at = at.toISOString();
    }
    if (located) { fields.latitude = located.latitude; fields.longitude = located.longitude; }
    act("start", fields, form);
  });
  $("form-finish").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    clearErrors(form);
    if (invalidFields(form)) return;
    var receipt = { summary: $("receipt-summary").value.trim(), result: $("receipt-result").value,
                    duration_minutes: number($("receipt-duration").value),
                    satisfaction: number($("receipt-satisfaction").value) };
    if ($("receipt-notes").value.trim()) receipt.notes = $("receipt-notes").value.trim();
    act("finish", { receipt: receipt }, form);
  });

  load();
  CC.live(function (message) {
    // Subscribed (or back after a break): read afresh, so nothing dispatched before the subscription is missed.
    if (message.type === "hello") {
      load();
      if (current) show(current.id);
    } else if (message.type === "order_notice") {
      fresh[message.order_id] = true;
      toast(t("provider.notice." + message.event, { number: message.number, title: message.title,
                                                  note: message.note || "" }));
      load();
      if (current && current.id === message.order_id) show(current.id);
    }
  }, "/provider/ws");
})();
