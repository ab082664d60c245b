"""conversation-service's completion consumer: what a published event leaves in the conversation, at most
once, whatever happens to the event or the consumer."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from shared.events import (
    COMPLETION_STREAM,
    CONVERSATION_GROUP,
    DEAD_LETTER_STREAM,
    CompletionEvent,
)

from testkit import (
    ServiceChat,
    System,
    create_db_user,
    eventually,
    publish_events,
)


@pytest.fixture
async def chat(system: System, conversation_api: httpx.AsyncClient) -> ServiceChat:
    return await ServiceChat(system, conversation_api).start()


async def test_a_reply_stores_the_user_and_assistant_messages_with_their_tokens(
    chat: ServiceChat, stream_redis: Any
) -> None:
    event = chat.event("Hello there", reply="Echo: Hello there", input_tokens=11, output_tokens=17)
    await publish_events(stream_redis, event)
    detail = await chat.wait_for_messages(2)
    user, assistant = detail["messages"]
    assert (user["role"], user["content"]) == ("user", "Hello there")
    assert (user["input_tokens"], user["output_tokens"], user["total_tokens"]) == (11, 0, 11)
    assert (assistant["role"], assistant["content"]) == ("assistant", "Echo: Hello there")
    assert (assistant["input_tokens"], assistant["output_tokens"], assistant["total_tokens"]) == (0, 17, 17)
    assert (assistant["model_id"], assistant["model_name"]) == (event.model_id, "qwen-plus")
    assert all(m["conversation_id"] == chat.conversation_id for m in detail["messages"])
    assert (detail["total_input_tokens"], detail["total_output_tokens"], detail["total_tokens"]) == (
        11,
        17,
        28,
    )


async def test_several_turns_accumulate_and_keep_the_system_message_first(
    chat: ServiceChat, stream_redis: Any
) -> None:
    before = await chat.detail()
    turns = [
        chat.event("first", input_tokens=30, output_tokens=12, system_prompt="You are terse."),
        chat.event("second", input_tokens=50, output_tokens=13),
        chat.event("third", input_tokens=70, output_tokens=14),
    ]
    for turn in turns:  # one after the other, as a user chats
        await publish_events(stream_redis, turn)
        await eventually(lambda turn=turn: chat.processed(turn))
    detail = await chat.wait_for_messages(7)
    roles = [(m["role"], m["content"]) for m in detail["messages"]]
    assert roles == [
        ("system", "You are terse."),
        ("user", "first"),
        ("assistant", "Echo: first"),
        ("user", "second"),
        ("assistant", "Echo: second"),
        ("user", "third"),
        ("assistant", "Echo: third"),
    ]
    system_message = detail["messages"][0]
    assert (
        system_message["input_tokens"],
        system_message["output_tokens"],
        system_message["total_tokens"],
    ) == (
        0,
        0,
        0,
    )
    assert [m["input_tokens"] for m in detail["messages"][1::2]] == [30, 50, 70]
    assert [m["output_tokens"] for m in detail["messages"][2::2]] == [12, 13, 14]
    assert (detail["total_input_tokens"], detail["total_output_tokens"], detail["total_tokens"]) == (
        150,
        39,
        189,
    )
    assert detail["updated_at"] > before["updated_at"]
    ids = [m["id"] for m in detail["messages"]]
    assert ids == sorted(ids)
    created = [m["created_at"] for m in detail["messages"]]
    assert created == sorted(created)
    listed = await chat.client.get(
        f"/api/conversations/{chat.conversation_id}/messages", headers=chat.headers()
    )
    assert listed.json()["data"] == detail["messages"]


async def test_detail_is_consistent_while_replies_are_recorded(chat: ServiceChat, stream_redis: Any) -> None:
    events = [chat.event(f"r{i}", input_tokens=3, output_tokens=2) for i in range(40)]
    await publish_events(stream_redis, *events)
    seen = 0
    while seen < 2 * len(events):
        detail = await chat.detail()
        messages = detail["messages"]
        assert detail["total_input_tokens"] == sum(m["input_tokens"] for m in messages)
        assert detail["total_output_tokens"] == sum(m["output_tokens"] for m in messages)
        seen = len(messages)


async def test_a_new_message_moves_the_conversation_to_the_top_of_the_list(
    system: System, conversation_api: httpx.AsyncClient, stream_redis: Any
) -> None:
    older = await ServiceChat(system, conversation_api).start("older")
    newer = ServiceChat(system, conversation_api)
    newer.user_id = older.user_id
    await newer.start("newer")
    event = older.event("bump")
    await publish_events(stream_redis, event)
    await eventually(lambda: older.processed(event))
    response = await conversation_api.get("/api/conversations", headers=older.headers())
    assert [c["id"] for c in response.json()["data"]] == [older.conversation_id, newer.conversation_id]


async def test_a_republished_event_changes_nothing(chat: ServiceChat, stream_redis: Any) -> None:
    event = chat.event("once", input_tokens=8, output_tokens=4)
    await publish_events(stream_redis, event)
    first = await chat.wait_for_messages(2)
    marker = chat.event("marker", input_tokens=1, output_tokens=1)
    await publish_events(stream_redis, event, event, marker)  # the relay published it again, twice
    await eventually(lambda: chat.processed(marker))
    detail = await chat.detail()
    assert [m["content"] for m in detail["messages"]] == ["once", "Echo: once", "marker", "Echo: marker"]
    assert detail["total_tokens"] == first["total_tokens"] + 2


async def test_an_event_for_a_deleted_conversation_is_dropped_and_acknowledged(
    chat: ServiceChat, stream_redis: Any
) -> None:
    response = await chat.client.delete(f"/api/conversations/{chat.conversation_id}", headers=chat.headers())
    assert response.status_code == 200
    event = chat.event("too late")
    [entry_id] = await publish_events(stream_redis, event)
    await eventually(lambda: chat.processed(event))

    async def acknowledged() -> bool:
        pending = await stream_redis.xpending_range(
            COMPLETION_STREAM, CONVERSATION_GROUP, entry_id, entry_id, 1
        )
        return not pending

    await eventually(acknowledged)
    with chat.system.database.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM aigcspace.ai_message WHERE conversation_id = %s", (chat.conversation_id,)
        ).fetchone()
    assert row == (0,)


async def test_an_event_naming_another_user_is_not_applied(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    event = chat.event("not yours").model_copy(update={"user_id": create_db_user(system.database)})
    await publish_events(stream_redis, event)
    await eventually(lambda: chat.processed(event))
    assert (await chat.detail())["messages"] == []


async def test_a_deleted_model_leaves_the_message_with_its_name(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    with system.database.connect() as conn:
        row = conn.execute(
            "INSERT INTO aigcspace.model (name, category) VALUES (%s, 0) RETURNING id",
            (f"gone-{uuid.uuid4().hex[:8]}",),
        ).fetchone()
        assert row is not None
        event = chat.event("hi").model_copy(update={"model_id": row[0], "model_name": "gone-model"})
        conn.execute("DELETE FROM aigcspace.model WHERE id = %s", (row[0],))
    await publish_events(stream_redis, event)
    detail = await chat.wait_for_messages(2)
    assert (detail["messages"][1]["model_id"], detail["messages"][1]["model_name"]) == (None, "gone-model")


async def test_a_nul_character_does_not_make_a_reply_unstorable(chat: ServiceChat, stream_redis: Any) -> None:
    await publish_events(stream_redis, chat.event("a\x00b", reply="c\x00d"))
    detail = await chat.wait_for_messages(2)
    assert [m["content"] for m in detail["messages"]] == ["a\ufffdb", "c\ufffdd"]


async def dead_letters(redis: Any, group: str, event_id: str) -> list[dict[str, str]]:
    entries = await redis.xrange(DEAD_LETTER_STREAM)
    return [
        fields
        for _id, fields in entries
        if fields.get("group") == group and event_id in fields.get("event", "")
    ]


async def test_a_poison_event_goes_to_the_dead_letter_and_the_group_moves_on(
    chat: ServiceChat, stream_redis: Any
) -> None:
    # 3 billion input tokens do not fit the message's INTEGER column: this event fails every time.
    poison = chat.event("poison", input_tokens=3_000_000_000)
    after = chat.event("after the poison")
    await publish_events(stream_redis, poison, after)
    await chat.wait_for_messages(2)  # the next event is not held up by the failing one
    parked = await eventually(
        lambda: dead_letters(stream_redis, CONVERSATION_GROUP, str(poison.event_id)), timeout=25
    )
    assert "failed 5 times" in parked[0]["reason"]
    assert "range" in parked[0]["reason"]
    assert CompletionEvent.model_validate_json(parked[0]["event"]) == poison
    detail = await chat.detail()
    assert [m["content"] for m in detail["messages"]] == ["after the poison", "Echo: after the poison"]
    assert not chat.processed(poison)


async def test_an_entry_that_is_not_an_event_goes_straight_to_the_dead_letter(stream_redis: Any) -> None:
    marker = uuid.uuid4().hex
    entry_id = await stream_redis.xadd(COMPLETION_STREAM, {"event": json.dumps({"junk": marker})})

    async def parked() -> list[dict[str, str]]:
        entries = await stream_redis.xrange(DEAD_LETTER_STREAM)
        return [f for _i, f in entries if f.get("group") == CONVERSATION_GROUP and f["entry_id"] == entry_id]

    [fields] = await eventually(parked)
    assert fields["reason"].startswith("not a valid completion event")


async def test_a_consumer_killed_mid_batch_has_its_entries_reclaimed(
    system: System, chat: ServiceChat, stream_redis: Any
) -> None:
    events = [chat.event(f"turn {i}", input_tokens=i + 1, output_tokens=1) for i in range(10)]
    killed = False
    try:
        with system.database.connect() as blocker, blocker.transaction():
            # Hold the conversation's row: the service's consumer reads the batch and blocks on event 1.
            blocker.execute(
                "SELECT 1 FROM aigcspace.ai_conversation WHERE id = %s FOR UPDATE", (chat.conversation_id,)
            )
            entry_ids = await publish_events(stream_redis, *events, atomic=True)

            async def all_delivered() -> list[dict[str, Any]] | None:
                pending = await stream_redis.xpending_range(
                    COMPLETION_STREAM, CONVERSATION_GROUP, entry_ids[0], entry_ids[-1], 100
                )
                return pending if len(pending) == len(entry_ids) else None

            pending = await eventually(all_delivered)
            dead_consumer = pending[0]["consumer"]
            service = system.processes.pop("conversation")
            killed = True
            service.kill()  # SIGKILL in the middle of the batch: nothing acknowledged
            service.wait()
    finally:
        # The lock is released. The restarted service is a new consumer of the group (a new name): it
        # must take the dead consumer's entries over.
        if killed:
            system.start("conversation")

    async def all_applied() -> bool:
        with system.database.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM aigcspace.conversation_processed_event WHERE event_id = ANY(%s)",
                ([e.event_id for e in events],),
            ).fetchone()
        pending = await stream_redis.xpending_range(
            COMPLETION_STREAM, CONVERSATION_GROUP, entry_ids[0], entry_ids[-1], 100
        )
        return row == (len(events),) and not pending

    await eventually(all_applied, timeout=20)
    detail = await chat.detail()
    assert [m["content"] for m in detail["messages"][::2]] == [f"turn {i}" for i in range(10)]
    assert detail["total_input_tokens"] == sum(range(1, 11))
    assert detail["total_output_tokens"] == 10
    consumers = await stream_redis.xinfo_consumers(COMPLETION_STREAM, CONVERSATION_GROUP)
    assert all(c["pending"] == 0 for c in consumers if c["name"] == dead_consumer)


async def test_two_consumers_never_apply_an_event_twice(
    chat: ServiceChat, stream_redis: Any, consumer_processes: Any
) -> None:
    event = chat.event("raced", input_tokens=5, output_tokens=5)
    consumer_processes(("conversation_service.consumer", "conversation-extra"))
    await publish_events(stream_redis, *([event] * 20))
    await eventually(lambda: chat.processed(event))
    await asyncio.sleep(0.5)
    detail = await chat.detail()
    assert len(detail["messages"]) == 2
    assert detail["total_tokens"] == 10
