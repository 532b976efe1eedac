"""Presence (issue 17): who is in a channel, join and leave items, across hubs with Redis, and
entries that expire when a process dies without leaving; both brokers, both backends."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from shallot.broadcast import Hub, Joined, Left, Member, open_hub

from .integration.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def hub(hub_url: str | None, prefix: str) -> AsyncIterator[Hub]:
    async with open_hub(hub_url, prefix=prefix) as hub:
        yield hub


def names(members: dict[str, Member]) -> list[tuple[str, dict[str, object]]]:
    return sorted(((member.member, member.info) for member in members.values()), key=str)


async def test_presence_lists_who_is_in_with_their_info(hub: Hub) -> None:
    with anyio.fail_after(5):
        assert await hub.presence("room") == {}
        async with (
            hub.subscribe("room", member="ada", info={"name": "Ada"}) as ada,
            hub.subscribe("room", member="ada", info={"tab": 2}),
            hub.subscribe("room"),  # listening only: not present
            hub.subscribe("elsewhere", member="bob"),
        ):
            present = await hub.presence("room")
            assert names(present) == [("ada", {"name": "Ada"}), ("ada", {"tab": 2})]
            assert ada.member is not None
            assert present[ada.member.client] == ada.member
        assert await hub.presence("room") == {}


async def test_join_and_leave_items_reach_who_asked_for_them(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with (
            hub.subscribe("room", join_leave=True) as watcher,
            hub.subscribe("room") as plain,
        ):
            async with hub.subscribe("room", member="ada", info={"n": 1}) as ada:
                joined = await watcher.receive()
                assert isinstance(joined, Joined)
                assert joined.member == ada.member
                await hub.publish("room", "hello")
                assert await watcher.receive() == "hello"
            left = await watcher.receive()
            assert isinstance(left, Left)
            assert left.member == ada.member
            assert await plain.receive() == "hello"  # and no presence items
            await hub.publish("room", "end")
            assert await plain.receive() == "end"


async def test_presence_arguments_are_checked(hub: Hub) -> None:
    for member, info, message in [
        ("", None, "member is a non-empty str"),
        (7, None, "member is a non-empty str"),
        ("ada", ["x"], "info is a mapping"),
        ("ada", {"x": object()}, "JSON-able"),
    ]:
        with pytest.raises(TypeError, match=message):
            hub.subscribe("room", member=member, info=info)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="may not start with NUL"):
        await hub.presence("\x00p:room")


async def test_presence_across_hubs_and_a_process_that_dies(
    redis: RedisServer, prefix: str
) -> None:
    """A member in another hub shows up (and its join reaches this one); a process killed
    without leaving drops out within presence_ttl, announced as left."""
    script = (
        "import anyio, sys\n"
        "from shallot.broadcast import open_hub\n"
        "async def main():\n"
        "    async with open_hub(sys.argv[1], prefix=sys.argv[2], presence_ttl=0.6) as hub:\n"
        "        async with hub.subscribe('room', member='ghost', info={'pid': 1}):\n"
        "            print('in', flush=True)\n"
        "            await anyio.sleep(60)\n"
        "anyio.run(main)\n"
    )
    with anyio.fail_after(20):
        async with (
            open_hub(redis.url, prefix=prefix, presence_ttl=0.6) as here,
            open_hub(redis.url, prefix=prefix, presence_ttl=0.6) as there,
            here.subscribe("room", join_leave=True) as watcher,
        ):
            async with there.subscribe("room", member="bob"):
                joined = await watcher.receive()
                assert isinstance(joined, Joined)
                assert joined.member.member == "bob"
                assert names(await here.presence("room")) == [("bob", {})]
            assert isinstance(await watcher.receive(), Left)
            process = await anyio.open_process(
                [sys.executable, "-c", script, redis.url, prefix], cwd=ROOT,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            async with process:
                assert process.stdout is not None
                assert (await process.stdout.receive()).strip() == b"in"
                joined = await watcher.receive()
                assert isinstance(joined, Joined)
                assert joined.member.member == "ghost"
                process.kill()  # SIGKILL: no goodbye
                await process.wait()
            start = anyio.current_time()
            left = await watcher.receive()  # announced by this process's sweep
            assert isinstance(left, Left)
            assert left.member.member == "ghost"
            assert anyio.current_time() - start < 0.6 * 3
            assert await here.presence("room") == {}
