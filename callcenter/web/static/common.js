// What every page script needs, in one place: the page's config block and strings, safe DOM building, the REST
// API with the page's bearer token, the API's field errors on a form, and the /ws WebSocket that reconnects with
// backoff. Loaded before the page's own script, which finds it as window.CC.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("cc-config").textContent);
  var S = config.strings;

  function t(key, values) {
    var text = Object.prototype.hasOwnProperty.call(S, key) ? S[key] : key;
    Object.keys(values || {}).forEach(function (name) { text = text.replace("{" + name + "}", values[name]); });
    return text;
  }

  // A machine value in the operator's words, or the value itself when the catalogue has no entry.
  function label(prefix, value, none) {
    if (value === null || value === undefined || value === "") return none === undefined ? "—" : none;
    var key = prefix + "." + value;
    return Object.prototype.hasOwnProperty.call(S, key) ? S[key] : String(value);
  }

  // Server data goes into the page as text only, never as HTML.
  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // A status line: the text, styled by kind ("good", "bad" or none). A part the page leaves out for this role
  // (no node) has nothing to say.
  function say(node, text, kind) {
    if (!node) return;
    node.textContent = text || "";
    node.className = "message" + (kind ? " " + kind : "");
  }

  // What went wrong with an api() call, for a status line.
  function errorText(result) {
    if (result.status === 0) return t("common.error.network");
    return t("common.error.generic", { message: result.body && result.body.error ? result.body.error.message
      : "HTTP " + result.status });
  }

  // A server time in the page's language and the browser's time zone ("—" for none).
  function when(iso) {
    if (!iso) return "—";
    var date = new Date(iso);
    return isNaN(date.getTime()) ? iso : date.toLocaleString(config.lang);
  }

  // ---- forms and lists ----------------------------------------------------------------------------------------

  // What an operator typed: null when empty (the API's "not given"), else the text without its surrounding blanks.
  function orNull(value) {
    value = value.trim();
    return value === "" ? null : value;
  }

  // A number typed in an input: null when empty, the text itself when it is not a number (the API says why).
  function numberOrNull(value) {
    value = value.trim();
    if (value === "") return null;
    return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }

  // A query string from {name: value}, the empty values (null, "") left out: "limit=20&q=%E7%8E%8B".
  function query(values) {
    return Object.keys(values).filter(function (name) {
      return values[name] !== null && values[name] !== undefined && values[name] !== "";
    }).map(function (name) { return name + "=" + encodeURIComponent(values[name]); }).join("&");
  }

  // One term and its value on a <dl> ("—" for none).
  function addField(list, term, value, attrs) {
    list.appendChild(el("dt", term));
    list.appendChild(el("dd", value === null || value === undefined || value === "" ? "—" : value, attrs));
  }

  // A table cell holding one button (a small secondary one unless ``attrs`` say otherwise) that calls onClick.
  function buttonCell(text, onClick, attrs, cellAttrs) {
    var cell = el("td", null, cellAttrs);
    var button = el("button", text, Object.assign({ type: "button", "class": "secondary small" }, attrs || {}));
    button.addEventListener("click", onClick);
    cell.appendChild(button);
    return cell;
  }

  // ---- the API's field errors ---------------------------------------------------------------------------------

  // A refusal as a list of {field, message}: every violation the API listed (details), else its one error with the
  // "field: " its message starts with taken off (the field is shown by the page, in the operator's words).
  function errorItems(error) {
    if (!error) return [];
    if (error.details && error.details.length) return error.details;
    var message = error.message || "";
    if (error.field && message.indexOf(error.field + ": ") === 0) message = message.slice(error.field.length + 2);
    return [{ field: error.field, message: message }];
  }

  // An API field path in the operator's words: "trainings.0.hours" -> "培训记录 · 1 · 学时". Each part is looked up
  // under the first of ``prefixes`` (one, or a list) whose catalogue has it; a list index counts from 1.
  function fieldLabel(path, prefixes) {
    if (!path) return "";
    prefixes = [].concat(prefixes);
    return path.split(".").map(function (part) {
      if (/^\d+$/.test(part)) return String(Number(part) + 1);
      for (var i = 0; i < prefixes.length; i++) {
        if (Object.prototype.hasOwnProperty.call(S, prefixes[i] + "." + part)) return S[prefixes[i] + "." + part];
      }
      return label(prefixes[prefixes.length - 1], part);
    }).join(" · ");
  }

  // The input a field path names: the form's [data-field="path"].
  function fieldInput(form, field) {
    return form.querySelector('[data-field="' + field + '"]');
  }

  // Undo showFieldErrors: no field marked, no message beside a field, the list under the form empty.
  function clearFieldErrors(form, list) {
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (node) {
      node.removeAttribute("aria-invalid");
    });
    Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (node) {
      node.parentNode.removeChild(node);
    });
    if (list) clear(list);
  }

  // A refused request on its form. Each field the API names (options.target finds its input, by default
  // [data-field="…"]) is marked aria-invalid; its message goes beside the field where the form keeps a place for
  // it (the nearest [data-errors] in the field's table row or around it), else into ``list`` under the form, as
  // does anything naming no field of the form. The status line ``message`` then says to fix them (options.fix, a
  // catalogue key) and the first marked field takes the focus. What was typed stays.
  // options.fields: the catalogue prefix(es) naming the fields (fieldLabel); options.items: the error as a list of
  // {field, message, original?} when the page reads more out of it (by default errorItems).
  function showFieldErrors(form, list, message, result, options) {
    clearFieldErrors(form, list);
    var error = result.body && result.body.error;
    if (result.status === 0 || !error) { say(message, errorText(result), "bad"); return; }
    (options.items || errorItems)(error).forEach(function (item) {
      var input = item.field ? (options.target || fieldInput)(form, item.field) : null;
      var row = input && input.closest("tr");
      var holder = input && ((row && row.querySelector("[data-errors]")) || input.closest("[data-errors]"));
      if (input) input.setAttribute("aria-invalid", "true");
      if (holder) {
        holder.appendChild(el("span", item.message, { "class": "field-error", "data-error-for": item.field,
                                                      title: item.original || item.message }));
      } else {
        list.appendChild(el("li", (item.field ? fieldLabel(item.field, options.fields) + ": " : "") + item.message,
          item.field ? { "data-error-for": item.field } : {}));
      }
    });
    say(message, t(options.fix), "bad");
    var first = form.querySelector("[aria-invalid]");
    if (first) first.focus();
  }

  // One REST call; resolves to {status, body} and never throws for HTTP errors (status 0: network down).
  function api(method, path, body) {
    var init = { method: method, headers: { "Authorization": "Bearer " + config.token }, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch("/api/v1" + path, init).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.status === 401) window.location.assign("/login");  // the session's token ended
        return { status: response.status, body: data };
      });
    }, function () { return { status: 0, body: null }; });
  }

  // The page's live connection: onMessage gets every message (hello first, after each (re)connect: the moment to
  // read the current state afresh). #ws-status says whether it is up. Closed by the hub (1013: this browser fell
  // behind), the network or a restart, it reconnects after 1 s doubling to 30 s, with jitter so a room of
  // browsers does not reconnect in step. ``path``: the WebSocket, /ws unless the page has its own (/provider/ws).
  function live(onMessage, path) {
    var delay = 1000;
    var MAX_DELAY = 30000;

    function status(up) {
      var node = document.getElementById("ws-status");
      if (!node) return;
      node.textContent = up ? t("common.ws.connected") : t("common.ws.reconnecting");
      node.className = "ws-status" + (up ? "" : " down");
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      // The token goes in the first message, never in the URL (URLs end up in access logs).
      var socket = new WebSocket(scheme + window.location.host + (path || "/ws"));
      socket.onopen = function () {
        socket.send(JSON.stringify({ type: "auth", token: config.token }));
      };
      socket.onmessage = function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch { return; }
        if (message.type === "hello") {
          delay = 1000;
          status(true);
        }
        try { onMessage(message); } catch (error) { console.error("live message", message.type, error); }
      };
      socket.onclose = function (event) {
        status(false);
        // 4401: this page's session ended (logged out, revoked, account disabled): back to the log-in form.
        // 4403: this account may not use the socket; reconnecting would not change that.
        if (event.code === 4401) { window.location.assign("/login"); return; }
        if (event.code === 4403) return;
        var wait = delay + Math.floor(Math.random() * 500);
        delay = Math.min(delay * 2, MAX_DELAY);
        setTimeout(connect, wait);
      };
    }

    connect();
  }

  window.CC = { config: config, t: t, label: label, el: el, clear: clear, say: say, errorText: errorText, when: when,
                query: query, orNull: orNull, numberOrNull: numberOrNull, addField: addField, buttonCell: buttonCell,
                errorItems: errorItems, fieldLabel: fieldLabel, clearFieldErrors: clearFieldErrors,
                showFieldErrors: showFieldErrors, api: api, live: live };
})();
