// SIP bans: the addresses brute-force protection keeps out of Asterisk, with the failures that banned them and
// until when; admins lift one early (DELETE /api/v1/sip-bans/{id}, after a confirmation). Plain JavaScript, no
// build step; common.js (window.CC) is loaded first.
(function () {
  "use strict";

  var t = CC.t, el = CC.el, api = CC.api, say = CC.say, errorText = CC.errorText, when = CC.when;
  var $ = function (id) { return document.getElementById(id); };
  var mayLift = Boolean(CC.config.mayLift);

  function load() {
    return api("GET", "/sip-bans").then(function (result) {
      var body = $("bans-body");
      CC.clear(body);
      if (result.status !== 200) { say($("bans-message"), errorText(result), "bad"); return; }
      result.body.items.forEach(function (ban) {
        var row = el("tr", null, { "data-ban-id": String(ban.id), "data-address": ban.address });
        row.appendChild(el("td", ban.address, { "class": "ban-address" }));
        row.appendChild(el("td", ban.failures));
        row.appendChild(el("td", ban.accounts.length ? ban.accounts.join(", ") : "—"));
        row.appendChild(el("td", when(ban.since)));
        row.appendChild(el("td", when(ban.until)));
        if (mayLift) {
          row.appendChild(CC.buttonCell(t("sip_bans.lift"), function () { lift(ban); },
                                        { "class": "secondary small ban-lift" }));
        }
        body.appendChild(row);
      });
      $("bans-none").hidden = result.body.items.length > 0;
      say($("bans-message"), t("sip_bans.found", { count: result.body.items.length }));
    });
  }

  function lift(ban) {
    if (!window.confirm(t("sip_bans.confirm_lift", { address: ban.address }))) return;
    api("DELETE", "/sip-bans/" + ban.id).then(function (result) {
      if (result.status !== 200) { say($("bans-message"), errorText(result), "bad"); return load(); }
      var done = result.body.provisioning === "applied" ? t("sip_bans.lifted", { address: ban.address })
        : t("sip_bans.lifted_pending", { address: ban.address });
      return load().then(function () { say($("bans-message"), done, "good"); });
    });
  }

  $("bans-refresh").addEventListener("click", load);
  load();
}());
