"""Figures, their references and targets; the printed table and bench-results/latest.json."""
from __future__ import annotations

import dataclasses
import json
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["met", "missed", "info", "pending"]
_COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


@dataclass
class Figure:
    section: str
    name: str
    value: float | None  # None: not measured (pending)
    unit: str
    reference: str = ""  # what the figure is compared with, measured in the same run
    reference_value: float | None = None
    target: str = ""  # e.g. "ratio >= 0.75", "value < 50"
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""
    status: Status = field(init=False, default="info")
    ratio: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.value is not None and self.reference_value:
            self.ratio = self.value / self.reference_value
        if self.value is None:
            self.status = "pending"
        elif self.target:
            subject, op, bound = self.target.split()
            measured = self.ratio if subject == "ratio" else self.value
            met = measured is not None and _COMPARE[op](measured, float(bound))
            self.status = "met" if met else "missed"


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return f"{text} {unit}".strip()


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "p50 / p99 ms", "reference (same run)", "ratio", "target", "status")]
    section = None
    lines: list[tuple[str, ...] | str] = []
    for fig in figures:
        if fig.section != section:
            section = fig.section
            lines.append(f"== {section}")
        latency = "" if fig.p50_ms is None else f"{fig.p50_ms:.2f} / {fig.p99_ms:.2f}"
        reference = f"{fig.reference}: {_number(fig.reference_value)}" if fig.reference else ""
        ratio = "" if fig.ratio is None else f"{fig.ratio:.2f}x"
        lines.append((fig.name, _number(fig.value, fig.unit) if fig.value is not None else "pending",
                      latency, reference, ratio, fig.target, fig.status.upper() if fig.target else fig.status))
    widths = [max(len(r[i]) for r in rows + [ln for ln in lines if isinstance(ln, tuple)])
              for i in range(len(rows[0]))]
    out = []
    for line in rows + lines:
        if isinstance(line, str):
            out.append(line)
        else:
            out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return "\n".join(out)


def notes(figures: list[Figure]) -> str:
    return "\n".join(f"- {f.name}: {f.note}" for f in figures if f.note)


def write(path: Path, figures: list[Figure], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**meta, "figures": [dataclasses.asdict(f) for f in figures]}
    path.write_text(json.dumps(document, indent=1) + "\n")
