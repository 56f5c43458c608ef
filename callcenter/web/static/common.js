// What every page script needs, in one place: the page's config block and strings, safe DOM building, the REST
// API with the page's bearer token, and the /ws WebSocket that reconnects with backoff. Loaded before the page's
// own script, which finds it as window.CC. (The wallboard uses it; the agent panel still has its own copies.)
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

  // A status line: the text, styled by kind ("good", "bad" or none).
  function say(node, text, kind) {
    node.textContent = text || "";
    node.className = "message" + (kind ? " " + kind : "");
  }

  // What went wrong with an api() call, for a status line.
  function errorText(result) {
    if (result.status === 0) return t("error.network");
    return t("error.generic", { message: result.body && result.body.error ? result.body.error.message
      : "HTTP " + result.status });
  }

  // A server time in the page's language and the browser's time zone ("—" for none).
  function when(iso) {
    if (!iso) return "—";
    var date = new Date(iso);
    return isNaN(date.getTime()) ? iso : date.toLocaleString(config.lang);
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
      node.textContent = up ? t("ws.connected") : t("ws.reconnecting");
      node.className = "ws-status" + (up ? "" : " down");
    }

    function connect() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + window.location.host + (path || "/ws") + "?token=" +
                                 encodeURIComponent(config.token));
      socket.onmessage = function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (error) { return; }
        if (message.type === "hello") {
          delay = 1000;
          status(true);
        }
        try { onMessage(message); } catch (error) { console.error("live message", message.type, error); }
      };
      socket.onclose = function () {
        status(false);
        var wait = delay + Math.floor(Math.random() * 500);
        delay = Math.min(delay * 2, MAX_DELAY);
        setTimeout(connect, wait);
      };
    }

    connect();
  }

  window.CC = { config: config, t: t, label: label, el: el, clear: clear, say: say, errorText: errorText, when: when,
                api: api, live: live };
})();
