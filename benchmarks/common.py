"""Shared by the benchmark scripts: interleaving, summaries, tables, the machine and versions."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from importlib import metadata

DASH = "\u2013"  # an en dash: "min\u2013max" (ruff flags the literal character)


def interleaved(contenders: Sequence[str], repeat: int) -> list[str]:
    """Returns the contenders rotated by ``repeat``, so each runs first, middle and last in
    turn and a drift of the machine does not always hit the same one."""
    shift = repeat % len(contenders)
    return [*contenders[shift:], *contenders[:shift]]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def cell(samples: Sequence[float], digits: int = 1) -> str:
    """Returns ``median (min-max)`` of the samples, with an en dash."""
    if not samples:
        return DASH
    return (
        f"{median(samples):.{digits}f} ({min(samples):.{digits}f}{DASH}{max(samples):.{digits}f})"
    )


def ratio(samples: Sequence[float], reference: Sequence[float]) -> float:
    """Returns the ratio of the medians of two sample lists measured in the same run."""
    if not samples or not reference:
        return float("nan")
    return median(samples) / median(reference)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Returns a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(value: float, limit: float, at_most: bool = True) -> str:
    """Returns ``met`` or ``MISSED`` for a ratio against its target."""
    ok = value <= limit if at_most else value >= limit
    return "met" if ok else "MISSED"


def rss(pid: int) -> int:
    """Returns the resident memory of process ``pid`` in bytes (Linux: ``/proc``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def environment() -> str:
    """Returns the machine, the versions and the date, as Markdown lines."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for package in ("anyio", "trio", "hypercorn", "starlette", "websockets", "shallot"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions.append(f"shallot at {_commit()}")
    return (
        f"- machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{model}, {platform.system()} {platform.release()}\n"
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        + ", ".join(versions)
        + f"\n- date: {now}"
    )


def _commit() -> str:
    """Returns the checkout's commit (read-only git), marked ``+dirty`` when shallot/ differs."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--", "shallot"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "an unknown commit"
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
