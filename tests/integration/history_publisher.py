"""A publisher process for the Redis reliability tests (issue 17): publishes ``count`` numbered
messages ``<name>:<i>`` to a channel with history, retrying each while the broker is away, and
prints ``ack <i> <epoch> <offset>`` for every one the broker acknowledged, then ``done``.

    python -m tests.integration.history_publisher URL PREFIX CHANNEL NAME COUNT
"""

from __future__ import annotations

import sys

import anyio

from shallot.broadcast import BrokerUnavailable, History, open_hub

PACE = 0.004  # seconds between messages: a steady stream, so the kill lands mid-way
DEADLINE = 30.0


async def main(url: str, prefix: str, channel: str, name: str, count: int) -> None:
    history = {channel: History(size=10_000, ttl=600)}
    with anyio.fail_after(DEADLINE):
        async with open_hub(url, prefix=prefix, history=history, reconnect_max=0.2) as hub:
            print("ready", flush=True)
            for number in range(count):
                while True:
                    try:
                        position = await hub.publish(channel, f"{name}:{number}")
                    except BrokerUnavailable:
                        await anyio.sleep(0.02)  # the broker is away: try again shortly
                        continue
                    break
                assert position is not None
                print("ack", number, position.epoch, position.offset, flush=True)
                await anyio.sleep(PACE)
    print("done", flush=True)


if __name__ == "__main__":
    url, prefix, channel, name, count = sys.argv[1:6]
    anyio.run(main, url, prefix, channel, name, int(count))
