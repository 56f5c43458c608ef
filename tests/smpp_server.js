// A real SMPP 3.4 server (SMSC) for the tests, on the npm package `smpp` (node-smpp, a devDependency): it listens on
// 127.0.0.1 on a free port, prints that port, and then one JSON line on stdout per thing it did (tests/smppserver.py
// reads them).
//
// Configuration, one JSON argument: {"system_id", "password", "fail_suffix", "undeliv_suffix", "later_suffix",
// "seconds_suffix"}. A bind with other credentials is refused (ESME_RBINDFAIL). A submit_sm is answered with a new
// message_id, or refused with ESME_RSUBMITFAIL when its destination ends in fail_suffix. A submission asking for a
// receipt (registered_delivery) gets a deliver_sm receipt (esm_class 4, the text of SMPP 3.4 Appendix B) right after
// the answer: stat:UNDELIV for destinations ending in undeliv_suffix, else DELIVRD; dates YYMMDDhhmm, or YYMMDDhhmmss
// for seconds_suffix (as many SMSCs send them); for later_suffix the receipt is held and delivered to the next
// session that binds (a receipt arriving after the client restarted).
"use strict";

const smpp = require("smpp");

const config = JSON.parse(process.argv[2] || "{}");
const held = [];  // receipts for later_suffix destinations, with the session that submitted them
let counter = 0;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function ends(number, suffix) {
  return Boolean(suffix) && number.endsWith(suffix);
}

function smppTime(date, seconds) {
  const two = (n) => String(n).padStart(2, "0");
  const base = two(date.getFullYear() % 100) + two(date.getMonth() + 1) + two(date.getDate()) +
    two(date.getHours()) + two(date.getMinutes());
  return seconds ? base + two(date.getSeconds()) : base;
}

function receiptText(id, destination, text) {
  const now = new Date();
  const withSeconds = ends(destination, config.seconds_suffix);
  const stat = ends(destination, config.undeliv_suffix) ? "UNDELIV" : "DELIVRD";
  const err = stat === "DELIVRD" ? "000" : "001";
  return "id:" + id + " sub:001 dlvrd:" + (stat === "DELIVRD" ? "001" : "000") + " submit date:" +
    smppTime(now, withSeconds) + " done date:" + smppTime(now, withSeconds) + " stat:" + stat + " err:" + err +
    " text:" + text.slice(0, 20).replace(/[^\x20-\x7e]/g, "?");
}

function sendReceipt(session, receipt) {
  session.deliver_sm({
    source_addr: receipt.destination,
    destination_addr: receipt.source,
    esm_class: 4,
    data_coding: 0,
    short_message: receipt.text,
  }, function (resp) {
    emit({event: "receipt_acked", message_id: receipt.id, status: resp.command_status});
  });
  emit({event: "receipt_sent", message_id: receipt.id, destination: receipt.destination, text: receipt.text});
}

const server = smpp.createServer(function (session) {
  session.bound = false;
  session.on("error", function (error) {
    emit({event: "session_error", error: String(error && error.message)});
  });
  session.on("close", function () {
    emit({event: "session_closed"});
  });

  function bind(pdu) {
    if (pdu.system_id !== config.system_id || pdu.password !== config.password) {
      session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
      emit({event: "bind_refused", system_id: pdu.system_id});
      return;
    }
    session.bound = true;
    session.send(pdu.response({system_id: "test-smsc"}));
    emit({event: "bound", system_id: pdu.system_id, command: pdu.command});
    for (let index = held.length - 1; index >= 0; index--) {
      if (held[index].session !== session) {
        const receipt = held.splice(index, 1)[0];
        sendReceipt(session, receipt);
      }
    }
  }

  session.on("bind_transceiver", bind);
  session.on("bind_transmitter", bind);
  session.on("bind_receiver", bind);
  session.on("enquire_link", function (pdu) {
    session.send(pdu.response());
  });
  session.on("unbind", function (pdu) {
    session.send(pdu.response());
    session.close();
  });
  session.on("deliver_sm_resp", function (pdu) {
    emit({event: "deliver_sm_resp", sequence_number: pdu.sequence_number, status: pdu.command_status});
  });
  session.on("submit_sm", function (pdu) {
    if (!session.bound) {
      session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
      return;
    }
    const destination = pdu.destination_addr;
    const message = pdu.short_message && pdu.short_message.message !== undefined ?
      pdu.short_message.message : pdu.short_message;
    const text = typeof message === "string" ? message : "";
    const payload = pdu.message_payload ? (pdu.message_payload.message || String(pdu.message_payload)) : "";
    if (ends(destination, config.fail_suffix)) {
      session.send(pdu.response({command_status: smpp.ESME_RSUBMITFAIL}));
      emit({event: "submit_refused", destination: destination});
      return;
    }
    counter += 1;
    const id = "a" + process.pid.toString(16) + counter.toString(16).padStart(5, "0");
    session.send(pdu.response({message_id: id}));
    emit({event: "submit", destination: destination, source: pdu.source_addr, message_id: id, text: text,
      payload: payload, data_coding: pdu.data_coding, esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery, sar: Boolean(pdu.sar_msg_ref_num)});
    if (!(pdu.registered_delivery & 1)) {
      return;
    }
    const receipt = {id: id, destination: destination, source: pdu.source_addr, session: session,
      text: receiptText(id, destination, text || payload)};
    if (ends(destination, config.later_suffix)) {
      held.push(receipt);
      emit({event: "receipt_held", message_id: id});
      return;
    }
    setImmediate(function () {
      sendReceipt(session, receipt);
    });
  });
});

server.listen(0, "127.0.0.1", function () {
  emit({event: "listening", port: server.address().port});
});

process.on("SIGTERM", function () {
  server.close();
  process.exit(0);
});

