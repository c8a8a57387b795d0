"""Quality gates: metric thresholds (``eval/thresholds.toml`` or ``--min/--max``) checked against a report."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from qa.eval.metrics import METRICS, format_metric

# --------------------------------------------------------------------------- thresholds


@dataclass
class Gate:
    metric: str
    kind: str  # "min" | "max"
    limit: float
    value: float | None

    @property
    def skipped(self) -> bool:
        return self.value is None

    @property
    def ok(self) -> bool:
        if self.value is None:
            return True
        return self.value >= self.limit if self.kind == "min" else self.value <= self.limit

    def __str__(self) -> str:
        op = "≥" if self.kind == "min" else "≤"
        if self.value is None:
            return f"{self.metric}: no eligible items (gate {op} {self.limit:g} skipped)"
        return f"{self.metric} = {format_metric(self.metric, self.value)} (needs {op} {self.limit:g})"


def _check_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown metric '{name}'; known: {', '.join(METRICS)}")
    return name


def parse_metric_values(specs: Iterable[str]) -> dict[str, float]:
    """['hit@5=0.8', ...] → {'hit@5': 0.8}."""
    out: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            raise ValueError(f"expected METRIC=VALUE, got '{spec}'")
        try:
            out[_check_metric(name.strip())] = float(value)
        except ValueError as exc:
            if "unknown metric" in str(exc):
                raise
            raise ValueError(f"not a number in '{spec}'") from exc
    return out


def load_thresholds(path: Path | str) -> tuple[dict[str, float], dict[str, float]]:
    """TOML ``[min]`` and ``[max]`` tables of metric = value."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ValueError(f"thresholds file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from exc
    unknown = set(data) - {"min", "max"}
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; use [min] and [max]")
    out: list[dict[str, float]] = []
    for kind in ("min", "max"):
        table = data.get(kind, {})
        if not isinstance(table, dict):
            raise ValueError(f"{path}: [{kind}] must be a table")
        parsed = {}
        for k, v in table.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{path}: [{kind}] {k} must be a number")
            try:
                parsed[_check_metric(k)] = float(v)
            except ValueError as exc:
                raise ValueError(f"{path}: [{kind}] {exc}") from exc
        out.append(parsed)
    return out[0], out[1]


def check_thresholds(metrics: dict, mins: dict[str, float], maxs: dict[str, float]) -> list[Gate]:
    gates = [Gate(m, "min", v, metrics.get(m)) for m, v in mins.items()]
    gates += [Gate(m, "max", v, metrics.get(m)) for m, v in maxs.items()]
    return gates
