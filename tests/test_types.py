"""``shallot.types`` makes ``mypy --strict`` catch a malformed app (issue 16): a route whose
handler has the wrong shape, a hook with the wrong signature, a pile called with the wrong
arguments. ``tests/typing/bad_app.py`` marks each line mypy must report, with its code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BAD_APP = Path(__file__).parent / "typing" / "bad_app.py"
REPO_ROOT = Path(__file__).parent.parent


def expected_errors() -> set[tuple[int, str]]:
    marked = re.compile(r"#.*\berror: ([a-z-]+)\s*$")
    return {
        (number, match.group(1))
        for number, line in enumerate(BAD_APP.read_text().splitlines(), start=1)
        if (match := marked.search(line))
    }


@pytest.mark.slow
def test_mypy_reports_each_marked_mistake_and_nothing_else() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(BAD_APP)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    reported = {
        (int(match.group(1)), match.group(2))
        for match in re.finditer(r"bad_app\.py:(\d+): error: .*\[([a-z-]+)\]$", result.stdout, re.M)
    }
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported == expected_errors(), result.stdout
