"""Developer sessions: ``nox`` runs tests, lint and typecheck; ``nox -s bench`` is opt-in."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python=["3.10", "3.11", "3.12", "3.13"])
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-e", ".[test,lint]")
    session.run(".ci/lint", external=True, env={"LINT_BIN": session.bin})


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test,lint]")
    session.run("mypy")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    # wrk (the HTTP load generator) comes from Debian's packages, installed where missing.
    session.run(
        "bash",
        "-c",
        'command -v wrk >/dev/null || { s=; [ "$(id -u)" -eq 0 ] || s=sudo; '
        "$s apt-get update -qq && $s apt-get install -y -qq wrk; }",
        external=True,
    )
    session.install("-e", ".[dev]")
    session.run("python", "benchmarks/run.py", *session.posargs)
