"""The fake Discord's sharding: real discord.py sharded clients, one per shard or all shards in one client."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from bot_helpers import serving

from bot.testing.fakediscord import FakeDiscord, Undelivered

pytestmark = pytest.mark.timeout(60)


class ShardClient(discord.AutoShardedClient):
    """Records the messages and interactions it gets; answers each interaction naming its shard."""

    def __init__(self, **kwargs) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=0.05, **kwargs)
        self.messages: list[discord.Message] = []
        self.interactions: list[discord.Interaction] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        pass  # discord.py waits 5 s between a process's shards (Discord's identify rate): not against the fake

    async def on_message(self, message: discord.Message) -> None:
        self.messages.append(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.interactions.append(interaction)
        await interaction.response.send_message(f"shard {interaction.guild.shard_id}")


async def until(predicate, timeout: float = 15.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.01)


@pytest.fixture
async def fake(monkeypatch):
    """Two shards, four guilds (guilds 0 and 2 on shard 0, 1 and 3 on shard 1)."""
    async with serving(monkeypatch, shard_count=2, guild_count=4) as fake:
        yield fake


@pytest.fixture
async def launch(fake):
    """``await launch(**kwargs)``: a started, ready ShardClient; every one is closed at the end."""
    started: list[tuple[ShardClient, asyncio.Task]] = []

    async def launch(**kwargs) -> ShardClient:
        client = ShardClient(**kwargs)
        task = asyncio.create_task(client.start("shard-token"))
        started.append((client, task))
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if task in done:
                task.result()  # raises what ended the client
            raise AssertionError(f"the client {kwargs} was not ready within 20 s")
        return client

    yield launch
    for client, task in started:
        await asyncio.wait_for(client.close(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        assert task.done()


def guild_ids(client: discord.Client) -> set[int]:
    return {g.id for g in client.guilds}


def shard_guild_ids(fake: FakeDiscord, shard: int) -> set[int]:
    return {g.id for g in fake.guilds_of(shard)}


# ---------------------------------------------------------------------------------------------- guild ids
def test_guild_ids_spread_over_the_shards_and_all_ids_stay_unique():
    fake = FakeDiscord(shard_count=3, guild_count=7)
    assert [fake.shard_of(g.id) for g in fake.guilds] == [k % 3 for k in range(7)]
    assert [g.shard for g in fake.guilds] == [k % 3 for k in range(7)]
    assert (fake.guild_id, fake.channel_id, fake.other_channel_id) == (
        fake.guilds[0].id,
        fake.guilds[0].channel_id,
        fake.guilds[0].other_channel_id,
    )
    ids = [fake.app_id, fake.dm_channel_id, int(fake.owner["id"]), fake.new_id(), fake.new_id()]
    ids += [x for g in fake.guilds for x in (g.id, g.channel_id, g.other_channel_id)]
    assert len(set(ids)) == len(ids)
    assert {fake.guild_of_channel(g.other_channel_id) for g in fake.guilds} == set(fake.guilds)
    assert fake.guild_of_channel(fake.dm_channel_id) is None


def test_the_default_fake_keeps_one_shard_one_guild_and_its_ids():
    fake = FakeDiscord()
    assert fake.shard_count == 1 and [g.id for g in fake.guilds] == [fake.guild_id]
    first = fake.app_id
    assert (fake.guild_id, fake.channel_id, fake.other_channel_id, fake.dm_channel_id) == (
        first + 1,
        first + 2,
        first + 3,
        first + 4,
    )


# ---------------------------------------------------------------------------------------------- one shard each
async def test_each_shard_client_sees_only_its_guilds_and_gets_only_its_events(fake, launch):
    c0 = await launch(shard_ids=[0], shard_count=2)
    c1 = await launch(shard_ids=[1], shard_count=2)
    await fake.wait_ready(5)  # both shards
    assert fake.connected_shards() == {0, 1}
    assert sorted(i["shard"] for i in fake.identifies) == [[0, 2], [1, 2]]

    assert guild_ids(c0) == shard_guild_ids(fake, 0) == {fake.guilds[0].id, fake.guilds[2].id}
    assert guild_ids(c1) == shard_guild_ids(fake, 1) == {fake.guilds[1].id, fake.guilds[3].id}
    assert {c.name for g in c1.guilds for c in g.text_channels} == {"general", "voice-notes", "staff-only"}

    g1, g2 = fake.guilds[1], fake.guilds[2]  # on shard 1, on shard 0
    m1 = await fake.send_message(content="to shard 1", guild_id=g1.id)
    assert (int(m1["guild_id"]), int(m1["channel_id"])) == (g1.id, g1.channel_id)
    m0 = await fake.send_message(content="to shard 0", guild_id=g2.id)
    dm = await fake.send_message(content="a DM", dm=True)
    await until(lambda: len(c1.messages) >= 1 and len(c0.messages) >= 2, what="the three messages")
    # shard 0 got the two later messages but not m1, which its socket would have carried first
    assert [m.id for m in c1.messages] == [int(m1["id"])]
    assert [m.id for m in c0.messages] == [int(m0["id"]), int(dm["id"])]
    assert c1.messages[0].guild.id == g1.id and c1.messages[0].channel.id == g1.channel_id
    assert c0.messages[0].channel.name == "general" and c0.messages[0].guild.id == g2.id
    assert c0.messages[1].guild is None and c0.messages[1].channel.id == fake.dm_channel_id
    assert not fake.undelivered

    # an interaction in guild 3 (shard 1), answered by client 1 in that guild's channel
    g3 = fake.guilds[3]
    inter = await fake.slash("emotion", "help", guild_id=g3.id)
    assert inter["guild_id"] == inter["channel"]["guild_id"] == str(g3.id)
    assert inter["authorizing_integration_owners"] == {"0": str(g3.id)}
    callback = await fake.wait_interaction(inter, kinds=("callback",), timeout=15)
    assert callback.content == "shard 1"
    assert (callback.guild_id, callback.channel_id) == (g3.id, g3.channel_id)
    assert [i.guild_id for i in c1.interactions] == [g3.id] and not c0.interactions

    # a message posted by client 0 in guild 2's other channel is recorded with that guild
    await c0.get_channel(g2.other_channel_id).send("hello")
    posted = await fake.wait_for(lambda r: r.kind == "message" and r.content == "hello", timeout=15)
    assert (posted.guild_id, posted.channel_id) == (g2.id, g2.other_channel_id)


async def _refused_with(client: discord.Client) -> int:
    """The close code the fake ends ``client``'s connection with."""
    try:
        with pytest.raises(discord.ConnectionClosed) as info:
            await asyncio.wait_for(client.start("shard-token"), 20)
    finally:
        await client.close()
    return info.value.code


async def test_an_identify_with_the_wrong_shard_count_is_refused(fake, launch):
    unsharded = discord.Client(intents=discord.Intents.default())  # sends no shard: [0, 1]
    assert await _refused_with(unsharded) == 4011  # sharding required
    assert await _refused_with(ShardClient(shard_ids=[0], shard_count=3)) == 4010  # invalid shard
    assert [(code, identify.get("shard")) for code, identify in fake.refused] == [
        (4011, None),
        (4010, [0, 3]),
    ]
    assert not fake.ready_shards and fake.connected_shards() == set()

    async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url) as ws:
        assert (await ws.receive_json())["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": "t", "intents": 0, "properties": {}, "shard": [2, 2]}})
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4010  # shard id out of range
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(fake.gateway_url) as ws:
            assert (await ws.receive_json())["op"] == 10
            await ws.send_json({"op": 6, "d": {"token": "t", "session_id": "no-such-session", "seq": 3}})
            assert await ws.receive_json() == {"op": 9, "d": False}  # INVALID_SESSION: identify anew
        async with http.get(fake.api_base + "/gateway/bot") as response:
            assert response.content_type == "application/json"
            assert (await response.json())["shards"] == 2

    # the right count still gets in afterwards
    client = await launch(shard_ids=[1], shard_count=2)
    assert guild_ids(client) == shard_guild_ids(fake, 1)


async def test_a_closed_shard_s_events_are_undelivered_while_the_other_keeps_receiving(fake, launch):
    c0 = await launch(shard_ids=[0], shard_count=2)
    c1 = await launch(shard_ids=[1], shard_count=2)
    await c1.close()
    await fake.wait_connected([0], timeout=10)
    assert fake.connected_shards() == {0}

    g1, g3, g2 = fake.guilds[1], fake.guilds[3], fake.guilds[2]
    lost = await fake.send_message(content="nobody on shard 1", guild_id=g1.id)
    inter = await fake.slash("emotion", "help", guild_id=g3.id)
    assert (
        await fake.dispatch("TYPING_START", {"guild_id": str(g1.id), "channel_id": str(g1.channel_id)})
        is False
    )
    assert fake.undelivered[:2] == [
        Undelivered("MESSAGE_CREATE", 1, lost),
        Undelivered("INTERACTION_CREATE", 1, inter),
    ]
    assert [u.shard for u in fake.undelivered] == [1, 1, 1]

    kept = await fake.send_message(content="shard 0 still here", guild_id=g2.id)
    dm = await fake.send_message(content="a DM", dm=True)
    await until(lambda: len(c0.messages) >= 2, what="shard 0's messages")
    assert [m.id for m in c0.messages] == [int(kept["id"]), int(dm["id"])]
    assert not c1.messages and len(fake.undelivered) == 3

    # the first guild is on shard 0: the default helpers still reach client 0
    inter0 = await fake.slash("emotion", "help")
    assert (await fake.wait_interaction(inter0, kinds=("callback",), timeout=15)).content == "shard 0"


async def test_a_dropped_shard_resumes_its_own_session(fake, launch):
    c0 = await launch(shard_ids=[0], shard_count=2)
    c1 = await launch(shard_ids=[1], shard_count=2)
    sessions = {s.shard_id: s for s in fake.sessions.values()}
    assert set(sessions) == {0, 1}
    await fake.send_message(content="before", guild_id=fake.guilds[1].id)
    await until(lambda: len(c1.messages) == 1, what="the first message")
    seq_before = sessions[1].seq

    await fake.drop_gateway(4000, shard=1)
    await fake.wait_resumed(1, timeout=20)
    (resume,) = fake.resumes
    assert resume["session_id"] == sessions[1].session_id and resume["seq"] == seq_before
    await fake.wait_connected([0, 1], timeout=10)
    assert len(fake.identifies) == 2  # resumed, not identified anew

    after = await fake.send_message(content="after", guild_id=fake.guilds[3].id)
    await until(lambda: len(c1.messages) == 2, what="the message after RESUME")
    assert c1.messages[1].id == int(after["id"])
    assert sessions[1].seq > seq_before + 1  # RESUMED and the message continued the session's sequence
    assert not c0.messages and not fake.undelivered


# ---------------------------------------------------------------------------------------------- one process
@pytest.mark.parametrize("shard_count", [2, None], ids=["shard_count=2", "from-gateway-bot"])
async def test_one_client_with_both_shards_sees_every_guild(fake, launch, shard_count):
    client = await launch(shard_count=shard_count)
    await fake.wait_ready(5)
    assert client.shard_count == 2 and set(client.shards) == {0, 1}
    assert guild_ids(client) == {g.id for g in fake.guilds} and len(client.guilds) == 4
    assert fake.connected_shards() == {0, 1}

    sent = [await fake.send_message(content=f"in {g.name}", guild_id=g.id) for g in fake.guilds]
    sent.append(await fake.send_message(content="a DM", dm=True))
    await until(lambda: len(client.messages) == 5, what="the five messages")
    assert sorted(m.id for m in client.messages) == sorted(int(m["id"]) for m in sent)
    for m in client.messages:
        if m.guild is not None:
            assert m.guild.shard_id == fake.shard_of(m.guild.id)
    assert not fake.undelivered
