"""Runs the benchmarks: in process first, then end to end over hypercorn (``nox -s bench``).

``--quick`` keeps the whole run under about two minutes (fewer, shorter measurements, still
three repeats); a full run takes about eight. ``--output FILE`` also writes the Markdown report
(the machine, the versions, every table and the target verdicts) to FILE.

Run: ``.venv/bin/python benchmarks/run.py [--quick] [--skip-inprocess] [--skip-e2e]``
"""

from __future__ import annotations

import argparse
import sys
import time

import e2e
import inprocess
from common import environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (about 2 minutes)")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--output", help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    quick = ["--quick"] if args.quick else []

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    sections = [f"### Benchmarks ({'quick' if args.quick else 'full'} run)", environment(), ""]
    print("\n".join(sections), flush=True)
    if not args.skip_inprocess:
        settings, _ = inprocess.parse(quick)
        log("in process ...")
        text = inprocess.report(inprocess.measure(settings, log=log), settings)
        print(text + "\n", flush=True)
        sections.append(text + "\n")
    if not args.skip_e2e:
        e2e_settings = e2e.parse(quick)
        log("end to end ...")
        text = e2e.report(e2e.measure(e2e_settings, log=log), e2e_settings)
        print(text + "\n", flush=True)
        sections.append(text + "\n")
    footer = f"(total {time.monotonic() - started:.0f} s)"
    print(footer)
    sections.append(footer)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as output:
            output.write("\n".join(sections) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
