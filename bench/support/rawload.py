"""Raw HTTP requests and their results, shared by the closed- and open-loop benches
(bench/token_api.py, bench/gateway.py)."""

from __future__ import annotations

from dataclasses import dataclass


def raw_get(path: str, key: str | None = None) -> bytes:
    """A GET to 127.0.0.1 as bytes, with the API key as a bearer token if given."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Result:
    label: str
    seconds: float
    latencies: list[float]  # ms
    errors: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self) -> str:
        return (
            f"{self.label:<28} {self.rate:8.1f} req/s   p50 {self.pct(0.50):6.2f} ms   "
            f"p99 {self.pct(0.99):6.2f} ms   max {max(self.latencies, default=0):7.2f} ms   "
            f"errors {self.errors}"
        )


def merged(results: list[Result]) -> Result:
    """The rounds of one side as one result."""
    return Result(
        results[0].label,
        sum(r.seconds for r in results),
        [x for r in results for x in r.latencies],
        sum(r.errors for r in results),
    )
