"""Fault injection: make chosen endpoints slow, fail, or make callbacks vanish (§11 item 17).

A fault matches an API endpoint name (or "*" for all) or a callback InfoType/Event
(target "callback"). `rate` is the probability it fires on a match and `times` how
many times it may fire before it is removed (None = until DELETE /sandbox/faults).
"""

from __future__ import annotations

import random
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import fields
from typing import Any

API, CALLBACK = "api", "callback"


@dataclass
class Fault:
    id: int
    target: str = API  # api | callback
    endpoint: str = "*"  # API: endpoint name; callback: InfoType / Event; "*" = any
    latency_ms: int = 0  # API: answer this much later
    http_status: int | None = None  # API: answer with this HTTP status (5xx) and no JSON
    errcode: int | None = None  # API: answer with this errcode (-1, 45009, 40014 …)
    rate: float = 1.0
    times: int | None = None
    drop: bool = False  # callback: never deliver
    delay_ms: int = 0  # callback: deliver this much later
    fired: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_fault(fault_id: int, raw: dict[str, Any]) -> Fault:
    """Return a Fault from a control-API body; ValueError names what is wrong."""
    names = {f.name for f in fields(Fault)} - {"id", "fired"}
    raw = dict(raw)
    # Friendly aliases: "count" for times, "info_type" for a callback fault's match.
    if "count" in raw:
        raw["times"] = raw.pop("count")
    if "info_type" in raw:
        raw["endpoint"] = raw.pop("info_type")
        raw.setdefault("target", CALLBACK)
    unknown = set(raw) - names
    if unknown:
        raise ValueError(f"unknown fault field(s) {sorted(unknown)}")
    fault = Fault(id=fault_id, **raw)
    if fault.target not in (API, CALLBACK):
        raise ValueError("target must be 'api' or 'callback'")
    if not 0 <= fault.rate <= 1:
        raise ValueError("rate must be within 0..1")
    if fault.http_status is not None and not 400 <= fault.http_status <= 599:
        raise ValueError("http_status must be 4xx or 5xx")
    if fault.target == API and not (fault.latency_ms or fault.http_status or fault.errcode):
        raise ValueError("an API fault needs latency_ms, http_status or errcode")
    if fault.target == CALLBACK and not (fault.drop or fault.delay_ms):
        raise ValueError("a callback fault needs drop or delay_ms")
    return fault


def take(faults: list[Fault], *, target: str, name: str) -> Fault | None:
    """Return the first fault that fires for `name`, consuming one of its `times`.

    Called with the state lock held: the decrement and removal must not race.
    """
    for fault in list(faults):
        if fault.target != target or fault.endpoint not in ("*", name):
            continue
        if fault.rate < 1 and random.random() >= fault.rate:
            continue
        fault.fired += 1
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
        return fault
    return None
