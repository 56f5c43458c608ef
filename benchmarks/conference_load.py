"""Emergency-conference assembly time for four invited parties (issue 4): `make bench`, or
`.venv/bin/python -m benchmarks.conference_load --help`.

A real stack (Asterisk, `callcenter serve`) with one agent (SIP phone answered by SIPp after ``--agent-ring-ms``,
panel connected) and ``--supervisors`` supervisors' panels; the SIP trunk (CC_TRUNK_URI) points at one SIPp UAS
that answers every number after ``--ring-ms``. Each repetition: an elder's device presses the red button (SIPp,
stays until hung up); the queue connects the agent, whose panel gets the screen-pop; ``--talk-ms`` later the agent
adds 120, the doctor, the relative and the social worker (``POST /api/v1/calls/{id}/conference/participants``,
one after another as four clicks would, each sent when the previous answer is back; ``--parallel``: all four at
once); when all four are in the bridge the conference is ended for everyone and the next repetition starts.

Timestamps: the benchmark's clock for the API requests and the panel's frames, Asterisk's (AMI, timestampevents)
for the channels — one machine, one clock. **Platform time to all joined** = the last party's ConfbridgeJoin minus
the first request, less that party's ring time (its ``Newstate Ringing`` → ``Newstate Up``: the called person's
share, set by ``--ring-ms``), taken for each party and the largest kept. Target: ≤ 1 s.
Results: a table on stdout and a JSON file under var/bench/.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import report
from benchmarks.ami_timing import CHANNEL_STATE_RINGING, CHANNEL_STATE_UP, AmiEvent, AmiEventLog
from benchmarks.panels import Frame, PanelFarm
from benchmarks.probes import Sampler
from benchmarks.sipp_load import stop_sipp
from benchmarks.sos_load import Bench, Percentiles, _fmt, percentiles
from benchmarks.stack import Credentials, bench_stack
from benchmarks.staff import AgentPhones, StaffMember, StaffSeed, answering_uas, login_agents, panel_tokens
from callcenter.conferences.services import PARTY_UNIQUEID_PREFIX
from tests import harness

ROLES = ("120", "doctor", "relative", "social_worker")
TARGET_MS = 1000.0
EVENTS = ("AgentConnect", "Newchannel", "Newstate", "ConfbridgeJoin")


@dataclasses.dataclass
class Party:
    role: str
    status: int  # the API's answer
    request_ms: float  # the POST's round trip
    participant_id: int | None = None
    originated_ms: float | None = None  # first request → Newchannel of its channel (Asterisk runs the Originate)
    ringing_ms: float | None = None  # → Newstate Ringing (the far end's 180)
    ring_ms: float | None = None  # Ringing → Up: the far end's share (--ring-ms), subtracted below
    joined_ms: float | None = None  # → ConfbridgeJoin
    error: str = ""

    @property
    def platform_joined_ms(self) -> float | None:
        if self.joined_ms is None or self.ring_ms is None:
            return None
        return self.joined_ms - self.ring_ms


@dataclasses.dataclass
class Assembly:
    repetition: int
    call_id: int | None
    parties: list[Party]
    posted_ms: float | None = None  # first request sent → the fourth answer received
    bridged_ms: float | None = None  # → the elder and the agent both in the conference (ConfbridgeJoin)
    all_originated_ms: float | None = None
    all_ringing_ms: float | None = None
    all_joined_ms: float | None = None  # wall clock, ring time included
    platform_ms: float | None = None  # the figure against the target: max over parties of joined − ring
    panel_lag_ms: float | None = None  # last party's ConfbridgeJoin → the agent's panel shows all four joined
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.platform_ms is not None


def _ms(at: float | None, since: float) -> float | None:
    return None if at is None else round((at - since) * 1000, 1)


def _first(events: Sequence[AmiEvent], name: str, **fields: str) -> AmiEvent | None:
    return next((e for e in events if e.name == name and all(e.get(k) == v for k, v in fields.items())), None)


def _party_events(events: Sequence[AmiEvent], participant_id: int) -> list[AmiEvent]:
    prefix = f"{PARTY_UNIQUEID_PREFIX}{participant_id}-"
    return [e for e in events if e.get("Uniqueid").startswith(prefix)]


class ConferenceBench(Bench):
    def __init__(self, stack: harness.Stack, events: AmiEventLog, farm: PanelFarm,
                 phones: AgentPhones, agent: StaffMember, token: str, device: Credentials,
                 trunk: subprocess.Popen[bytes] | None) -> None:
        super().__init__(stack, None)
        self.events = events
        self.farm = farm
        self.phones = phones
        self.agent = agent
        self.token = token
        self.device = device
        self.trunk = trunk

    def pids(self) -> dict[str, int | None]:
        trunk = self.trunk.pid if self.trunk is not None and self.trunk.poll() is None else None
        return {**super().pids(), "phones": self.phones.pid, "panels": self.farm.pid, "trunk": trunk}

    def _post(self, call_id: int, role: str) -> tuple[Party, float]:
        sent = time.time()
        status, body = self.stack.api("POST", f"/api/v1/calls/{call_id}/conference/participants", {"role": role},
                                      token=self.token)
        party = Party(role, status, round((time.time() - sent) * 1000, 1))
        if status == 201:
            party.participant_id = int(body["id"])
        else:
            party.error = f"{status}: {json.dumps(body, ensure_ascii=False)[:300]}"
        return party, sent

    def assemble(self, repetition: int, talk_ms: int, parallel: bool, workdir: Path) -> Assembly:
        ami_mark, farm_mark = self.events.mark(), self.farm.mark()
        finished: dict[str, harness.SippResult] = {}
        elder = threading.Thread(target=lambda: finished.setdefault("elder", harness.sipp(
            self.stack, "call_until_bye", service="sos", auth_user=self.device.user, password=self.device.password,
            variables={"user": self.device.user}, workdir=workdir, timeout=120)), daemon=True)
        elder.start()
        assembly = Assembly(repetition, None, [])
        try:
            pop: Frame | None = self.farm.wait_for(lambda frames: next(
                (f for f in frames if f.type == "screen_pop" and f.username == self.agent.username), None),
                30, farm_mark)
            if pop is None:
                assembly.error = "no screen-pop for the agent within 30 s"
                return assembly
            call_id, linkedid = int(pop.message["call_id"]), str(pop.message["linkedid"])
            assembly.call_id = call_id
            time.sleep(talk_ms / 1000)
            first_sent = time.time()
            if parallel:
                with concurrent.futures.ThreadPoolExecutor(len(ROLES)) as pool:
                    posted = list(pool.map(lambda role: self._post(call_id, role), ROLES))
            else:
                posted = [self._post(call_id, role) for role in ROLES]
            assembly.posted_ms = _ms(time.time(), first_sent)
            first_sent = min(sent for _, sent in posted)
            assembly.parties = [party for party, _ in posted]
            ids = [p.participant_id for p in assembly.parties if p.participant_id is not None]
            if len(ids) < len(ROLES):
                assembly.error = "; ".join(f"{p.role}: {p.error}" for p in assembly.parties if p.error)

            def all_joined(events: list[AmiEvent]) -> bool:
                return all(_first(_party_events(events, i), "ConfbridgeJoin") for i in ids)

            if not self.events.wait_for(all_joined, 40, ami_mark):
                assembly.error = assembly.error or "not every party joined within 40 s"
            # The agent's panel: a roster push with all four joined.
            shown = self.farm.wait_for(lambda frames: next(
                (f for f in frames if f.type == "conference_roster" and f.username == self.agent.username
                 and f.message.get("call_id") == call_id
                 and sum(1 for p in f.message.get("participants", [])
                         if p["id"] in ids and p["state"] == "joined") == len(ids)), None), 10, farm_mark)
            self._measure(assembly, self.events.since(ami_mark), first_sent, linkedid, shown)
        finally:
            if assembly.call_id is not None:
                self.stack.api("POST", f"/api/v1/calls/{assembly.call_id}/conference/end", token=self.token)
            elder.join(60)
            self.settle()
        result = finished.get("elder")
        if not assembly.error and (result is None or not result.ok):
            assembly.error = f"the elder's call failed: {result.output[-300:] if result else 'no result'}"
        return assembly

    def _measure(self, assembly: Assembly, events: list[AmiEvent], first_sent: float, linkedid: str,
                 shown: Frame | None) -> None:
        for party in assembly.parties:
            if party.participant_id is None:
                continue
            mine = _party_events(events, party.participant_id)
            created, joined = _first(mine, "Newchannel"), _first(mine, "ConfbridgeJoin")
            ringing = _first(mine, "Newstate", ChannelState=CHANNEL_STATE_RINGING)
            up = _first(mine, "Newstate", ChannelState=CHANNEL_STATE_UP)
            party.originated_ms = _ms(created.at if created else None, first_sent)
            party.ringing_ms = _ms(ringing.at if ringing else None, first_sent)
            party.joined_ms = _ms(joined.at if joined else None, first_sent)
            if ringing is not None and up is not None:
                party.ring_ms = round((up.at - ringing.at) * 1000, 1)
        parties = assembly.parties
        elder = _first(events, "ConfbridgeJoin", Uniqueid=linkedid)
        agent = next((e for e in events if e.name == "ConfbridgeJoin"
                      and e.get("Channel").startswith(f"PJSIP/{self.agent.extension}-")), None)
        if elder is not None and agent is not None:
            assembly.bridged_ms = _ms(max(elder.at, agent.at), first_sent)

        def latest(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return round(max(known), 1) if known and len(known) == len(values) else None

        complete = len(parties) == len(ROLES)
        assembly.all_originated_ms = latest([p.originated_ms for p in parties]) if complete else None
        assembly.all_ringing_ms = latest([p.ringing_ms for p in parties]) if complete else None
        assembly.all_joined_ms = latest([p.joined_ms for p in parties]) if complete else None
        assembly.platform_ms = latest([p.platform_joined_ms for p in parties]) if complete else None
        if shown is not None and assembly.all_joined_ms is not None:
            assembly.panel_lag_ms = round((shown.at - first_sent) * 1000 - assembly.all_joined_ms, 1)


# -- report ---------------------------------------------------------------------------------------------------------

FIGURES = (("posted_ms", "4 POSTs answered"), ("bridged_ms", "elder+agent bridged"),
           ("all_originated_ms", "all 4 originated"), ("all_ringing_ms", "all 4 ringing"),
           ("all_joined_ms", "all 4 joined (wall)"), ("platform_ms", "all 4 joined − ring"),
           ("panel_lag_ms", "last join → panel"))


def summary(assemblies: list[Assembly]) -> dict[str, Percentiles]:
    ok = [a for a in assemblies if a.ok]
    figures = {name: percentiles([getattr(a, name) for a in ok if getattr(a, name) is not None])
               for name, _ in FIGURES}
    figures["request_ms"] = percentiles([p.request_ms for a in ok for p in a.parties])
    figures["ring_ms"] = percentiles([p.ring_ms for a in ok for p in a.parties if p.ring_ms is not None])
    return figures


def row(assembly: Assembly) -> str:
    cells = " ".join(f"{_fmt(getattr(assembly, name), 0):>8}" for name, _ in FIGURES)
    requests = "/".join(f"{p.request_ms:.0f}" for p in assembly.parties)
    rings = "/".join(_fmt(p.ring_ms, 0) for p in assembly.parties)
    return (f"{assembly.repetition:>3} {_fmt(assembly.call_id, 0):>5} {cells} {requests:>19} {rings:>19}"
            f"{'   << ' + assembly.error if assembly.error else ''}")


HEADER = (f"{'rep':>3} {'call':>5} {'posted':>8} {'bridged':>8} {'origin.':>8} {'ringing':>8} {'joined':>8} "
          f"{'platfrm':>8} {'panel':>8} {'POST ms 120/doc/rel/sw':>19} {'ring ms':>19}")
LEGEND = ("ms from the first POST: posted = the fourth answer back; bridged = elder and agent in the conference; "
          "origin./ringing/joined = the last\nof the four parties' Newchannel / Ringing / ConfbridgeJoin; platfrm = "
          "joined less that party's ring time (the target); panel = last join → the agent's panel shows all four")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conference_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="conferences assembled (default 20)")
    parser.add_argument("--ring-ms", type=int, default=1000,
                        help="the trunk's phones ring this long before answering (default 1000)")
    parser.add_argument("--agent-ring-ms", type=int, default=300, help="the agent's phone rings (default 300)")
    parser.add_argument("--talk-ms", type=int, default=1000,
                        help="the agent talks this long after the pop before adding parties (default 1000)")
    parser.add_argument("--parallel", action="store_true", help="send the four POSTs at once")
    parser.add_argument("--supervisors", type=int, default=5, help="supervisors' panels (default 5)")
    report.add_common_arguments(parser, "conference_load", "about a minute: 5 conferences")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 5
    command, started = report.start("conference_load", argv)
    staff = StaffSeed(agents=1, supervisors=args.supervisors)
    assemblies: list[Assembly] = []
    cpu: dict[str, float] = {}
    asterisk = ""
    print(f"[bench] {command}: starting a stack (1 agent, {args.supervisors} supervisors, "
          f"{'PostgreSQL' if args.postgres else 'SQLite'})", flush=True)
    with bench_stack(4, args.postgres, seed=staff) as (stack, credentials):
        asterisk = stack.runtime.version() or ""
        workdir = stack.settings.data_dir / "sipp"
        agent = staff.agents[0]
        events = AmiEventLog(stack.settings, EVENTS)
        phones = AgentPhones(stack, [agent], workdir / "phones", args.agent_ring_ms)
        trunk: subprocess.Popen[bytes] | None = None
        try:
            events.start()
            phones.start()
            trunk = answering_uas(int(stack.settings.trunk_uri.rsplit(":", 1)[1]), args.ring_ms, workdir / "trunk",
                                  "trunk")
            failures = login_agents(stack, [agent.username], stack.token())
            if failures:
                raise RuntimeError(f"the agent could not log in: {failures}")
            panels = panel_tokens(stack, staff.members)
            ws_url = f"ws://{stack.settings.http.host}:{stack.settings.http.port}/ws"
            with PanelFarm(ws_url, panels) as farm:
                bench = ConferenceBench(stack, events, farm,
                                        phones, agent, panels[0].token, credentials[0], trunk)
                print("[bench] warming up (one conference, not reported)", flush=True)
                bench.assemble(0, args.talk_ms, args.parallel, workdir / "elder")
                print(f"\n{HEADER}\n{LEGEND}", flush=True)
                with Sampler(stack.runtime, bench.pids, bench.recordings) as sampler:
                    for repetition in range(1, args.repeats + 1):
                        assembly = bench.assemble(repetition, args.talk_ms, args.parallel, workdir / "elder")
                        assemblies.append(assembly)
                        print(row(assembly), flush=True)
                cpu = sampler.peaks.cpu_percent
            if events.error:
                print(f"[bench] AMI reader: {events.error}", flush=True)
        finally:
            events.stop()
            phones.stop()
            stop_sipp(trunk)
    figures = summary(assemblies)
    ok = [a for a in assemblies if a.ok]
    platform = figures["platform_ms"]
    result = {
        **report.header(command, started, args, asterisk),
        "verdicts": {
            "assembled": f"{len(ok)}/{len(assemblies)}",
            "target_ms": TARGET_MS,
            "platform_ms_p50": platform.p50, "platform_ms_max": platform.max,
            "target_met": None if not ok else platform.max is not None and platform.max <= TARGET_MS,
        },
        "figures_ms": {name: dataclasses.asdict(p) for name, p in figures.items()},
        "cpu_percent": cpu,
        "assemblies": [dataclasses.asdict(a) for a in assemblies],
    }
    print(f"\n{'':<24} {'p50':>8} {'p95':>8} {'max':>8}   (ms, {len(ok)} conferences assembled of "
          f"{len(assemblies)})")
    for name, label in (*FIGURES, ("request_ms", "one POST"), ("ring_ms", "ring time (subtracted)")):
        p = figures[name]
        print(f"{label:<24} {_fmt(p.p50, 1):>8} {_fmt(p.p95, 1):>8} {_fmt(p.max, 1):>8}")
    print(f"[bench] CPU % of one core over the repetitions: {json.dumps(cpu)}")
    return report.finish("conference_load", result, args.output)


if __name__ == "__main__":
    report.run(main)
