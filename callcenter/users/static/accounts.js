// Accounts: every account's own password, second factor and sessions; for administrators, every staff account for
// its whole life (create, change, disable, reset a password, unlock, end sessions). Plain JavaScript, no build
// step; common.js (window.CC) is loaded first. Ending this page's own session sends it to the log-in form.
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, errorText = CC.errorText, when = CC.when;
  var $ = function (id) { return document.getElementById(id); };
  var selected = null;

  function sessionRows(body, items, onEnd) {
    CC.clear(body);
    items.forEach(function (item) {
      var row = el("tr", null, { "data-session": item.id });
      var kind = CC.label("accounts.kind", item.kind);
      row.appendChild(el("td", item.current ? kind + " · " + t("accounts.this") : kind));
      row.appendChild(el("td", when(item.created_at)));
      row.appendChild(el("td", item.source_ip || "—"));
      row.appendChild(el("td", when(item.expires_at)));
      row.appendChild(CC.buttonCell(t("accounts.end"), function () { onEnd(item); }));
      body.appendChild(row);
    });
    if (!items.length) {
      var empty = el("tr");
      empty.appendChild(el("td", t("accounts.no_sessions"), { colspan: "5", "class": "muted" }));
      body.appendChild(empty);
    }
  }

  // ---- my account -------------------------------------------------------------------------------------------

  function loadMySessions() {
    api("GET", "/auth/sessions").then(function (result) {
      if (result.status !== 200) { say($("my-sessions-message"), errorText(result), "bad"); return; }
      sessionRows($("my-sessions-body"), result.body.items, function (item) {
        api("DELETE", "/auth/sessions/" + encodeURIComponent(item.id)).then(function (ended) {
          if (ended.status !== 200) { say($("my-sessions-message"), errorText(ended), "bad"); return; }
          if (item.current) { window.location.assign("/login"); return; }
          say($("my-sessions-message"), t("accounts.ended", { count: 1 }), "good");
          loadMySessions();
        });
      });
    });
  }

  $("password-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = $("password-form");
    CC.clearFieldErrors(form, $("password-errors"));
    api("POST", "/auth/password", { current_password: $("current-password").value,
                                    new_password: $("new-password").value }).then(function (result) {
      if (result.status !== 200) {
        CC.showFieldErrors(form, $("password-errors"), $("password-message"), result,
                           { fields: "accounts.field", fix: "accounts.fix" });
        return;
      }
      form.reset();
      say($("password-message"), t("accounts.password_changed", { count: result.body.ended }), "good");
      loadMySessions();
    });
  });

  function totpState(since) {
    if (!$("totp-state")) return;
    $("totp-state").textContent = since ? t("accounts.totp_on", { since: when(since) }) : t("accounts.totp_off");
    $("totp-setup").hidden = Boolean(since);
  }

  if ($("totp")) {
    api("GET", "/users/" + encodeURIComponent(CC.config.username)).then(function (result) {
      if (result.status === 200) totpState(result.body.second_factor_since);
    });
    $("totp-setup").addEventListener("click", function () {
      api("POST", "/auth/totp").then(function (result) {
        if (result.status !== 200) { say($("totp-message"), errorText(result), "bad"); return; }
        $("totp-secret").textContent = result.body.secret;
        $("totp-secret").title = result.body.uri;
        $("totp-confirm-form").hidden = false;
        $("totp-code").focus();
      });
    });
    $("totp-confirm-form").addEventListener("submit", function (event) {
      event.preventDefault();
      api("POST", "/auth/totp/confirm", { code: $("totp-code").value.trim() }).then(function (result) {
        if (result.status !== 200) { say($("totp-message"), errorText(result), "bad"); return; }
        $("totp-confirm-form").hidden = true;
        totpState(result.body.second_factor_since);
        say($("totp-message"), t("accounts.totp_enabled"), "good");
      });
    });
  }

  // ---- administration ---------------------------------------------------------------------------------------

  function loadUsers() {
    api("GET", "/users?limit=200").then(function (result) {
      if (result.status !== 200) { say($("users-message"), errorText(result), "bad"); return; }
      var body = $("users-body");
      CC.clear(body);
      result.body.items.forEach(function (user) {
        var row = el("tr", null, { "data-username": user.username });
        row.appendChild(el("td", user.username));
        row.appendChild(el("td", user.display_name || "—"));
        row.appendChild(el("td", CC.label("common.role", user.role)));
        row.appendChild(el("td", user.active ? t("accounts.enabled") : t("accounts.disabled")));
        row.appendChild(el("td", user.second_factor_since ? t("accounts.yes") : t("accounts.no")));
        row.appendChild(CC.buttonCell(t("accounts.open"), function () { choose(user); }));
        body.appendChild(row);
      });
    });
  }

  function loadAccountSessions() {
    var path = "/users/" + encodeURIComponent(selected.username) + "/sessions";
    api("GET", path).then(function (result) {
      if (result.status !== 200) { say($("account-message"), errorText(result), "bad"); return; }
      sessionRows($("account-sessions-body"), result.body.items, function (item) {
        api("DELETE", path + "/" + encodeURIComponent(item.id)).then(done(t("accounts.ended", { count: 1 })));
      });
    });
  }

  function choose(user) {
    selected = user;
    $("account").hidden = false;
    $("account-name").textContent = user.username;
    $("e-display").value = user.display_name || "";
    $("e-role").value = user.role;
    $("e-role").disabled = user.role === "provider";
    $("e-active").checked = user.active;
    say($("account-message"), "");
    CC.clearFieldErrors($("edit-form"), $("edit-errors"));
    CC.clearFieldErrors($("reset-form"), $("reset-errors"));
    loadAccountSessions();
  }

  // After an action on the selected account: say so, and show its state afresh.
  function done(text) {
    return function (result) {
      if (result.status !== 200) { say($("account-message"), errorText(result), "bad"); return; }
      say($("account-message"), typeof text === "function" ? text(result.body) : text, "good");
      loadUsers();
      loadAccountSessions();
    };
  }

  if ($("manage")) {
    loadUsers();
    $("create-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var form = $("create-form");
      CC.clearFieldErrors(form, $("create-errors"));
      api("POST", "/users", { username: $("c-username").value.trim(), display_name: CC.orNull($("c-display").value),
                              role: $("c-role").value, password: $("c-password").value }).then(function (result) {
        if (result.status !== 201) {
          CC.showFieldErrors(form, $("create-errors"), $("create-message"), result,
                             { fields: "accounts.field", fix: "accounts.fix" });
          return;
        }
        form.reset();
        say($("create-message"), t("accounts.created", { username: result.body.username }), "good");
        loadUsers();
      });
    });
    $("edit-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var form = $("edit-form");
      CC.clearFieldErrors(form, $("edit-errors"));
      var change = { display_name: CC.orNull($("e-display").value), active: $("e-active").checked };
      if (selected.role !== "provider") change.role = $("e-role").value;
      api("PATCH", "/users/" + encodeURIComponent(selected.username), change).then(function (result) {
        if (result.status !== 200) {
          CC.showFieldErrors(form, $("edit-errors"), $("account-message"), result,
                             { fields: "accounts.field", fix: "accounts.fix" });
          return;
        }
        selected = result.body;
        done(t("accounts.saved"))(result);
      });
    });
    $("reset-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var form = $("reset-form");
      CC.clearFieldErrors(form, $("reset-errors"));
      api("POST", "/users/" + encodeURIComponent(selected.username) + "/password",
          { password: $("r-password").value }).then(function (result) {
        if (result.status !== 200) {
          CC.showFieldErrors(form, $("reset-errors"), $("account-message"), result,
                             { fields: "accounts.field", fix: "accounts.fix" });
          return;
        }
        form.reset();
        done(t("accounts.password_reset"))(result);
      });
    });
    $("unlock").addEventListener("click", function () {
      api("POST", "/users/" + encodeURIComponent(selected.username) + "/unlock").then(done(function (body) {
        return t("accounts.unlocked", { count: body.addresses_cleared });
      }));
    });
    $("totp-reset").addEventListener("click", function () {
      api("DELETE", "/users/" + encodeURIComponent(selected.username) + "/totp")
        .then(done(t("accounts.totp_was_reset")));
    });
    $("end-all").addEventListener("click", function () {
      api("DELETE", "/users/" + encodeURIComponent(selected.username) + "/sessions").then(done(function (body) {
        return t("accounts.ended", { count: body.ended });
      }));
    });
  }

  loadMySessions();
})();
