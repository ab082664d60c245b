"""Recording replies: a client that goes away, Redis down while a reply ends (the outbox), Redis and the
database down at once (held in memory and retried), and a process killed mid-stream (its replies in flight)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
from dashscope_standin.directives import filler
from llm_testkit import (
    CHAT,
    chat_body,
    conversation_count,
    frame_data,
    new_user,
    outbox_rows,
    stream_events,
    wait_for_event,
    wait_for_outcome,
)
from psycopg import sql
from shared.events import COMPLETION_STREAM

from harness import PG_SERVER_URL
from testkit import ScratchDatabase, System, UserSession, eventually, stream_stopping


async def test_client_disconnect_stops_dashscope_and_records_the_partial_reply(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    body = chat_body("[[tokens:400]] [[delay_ms:20]]", stream=True)  # 100 pieces over about 2 s
    async with gateway.stream("POST", CHAT, json=body, headers=user.headers) as response:
        assert response.status_code == 200
        conversation_id = int(response.headers["X-Conversation-Id"])
        first = b""
        async for piece in response.aiter_raw():
            first += piece
            if b"\n\n" in first:
                break
    left_at = time.monotonic()
    assert frame_data(first.split(b"\n\n")[0])["content"] == "Lore"

    assert user.apikey is not None
    await wait_for_outcome(system, user.apikey, "cancelled", timeout=5)
    assert time.monotonic() - left_at < 1.5  # DashScope was stopped at once, not after 2 s

    event = await wait_for_event(stream_redis, conversation_id=conversation_id)
    assert event["status"] == "interrupted"
    assert event["finish_reason"] is None
    content = event["assistant_content"]
    assert 4 <= len(content) < 400
    assert filler(400).startswith(content)
    # Billed at DashScope's last reported usage, which covers exactly what was generated.
    assert event["usage"]["output_tokens"] == len(content)
    assert event["usage"]["input_tokens"] == len("[[tokens:400]] [[delay_ms:20]]")


async def _leave_early(gateway: httpx.AsyncClient, user: UserSession, body: dict[str, Any]) -> float:
    """Send a chat and give up on it after 0.3 s, as a client that closes the tab does."""
    request = asyncio.create_task(gateway.post(CHAT, json=body, headers=user.headers))
    await asyncio.sleep(0.3)
    request.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await request
    return time.monotonic()


async def test_client_leaving_before_the_first_frame_stops_dashscope_and_leaves_nothing(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    body = chat_body("[[tokens:40]] [[delay_ms:2000]]", stream=True)  # the first piece comes after 2 s
    left_at = await _leave_early(gateway, user, body)
    assert user.apikey is not None
    await wait_for_outcome(system, user.apikey, "cancelled", timeout=5)
    assert time.monotonic() - left_at < 1.5  # stopped at once, not when the first piece came
    await asyncio.sleep(0.5)
    assert await conversation_count(gateway, user) == 0
    assert outbox_rows(system, user_id=user.id) == []
    assert await stream_events(stream_redis, user_id=user.id) == []


async def test_client_leaving_a_non_stream_chat_stops_dashscope_and_leaves_nothing(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    body = chat_body("[[tokens:40]] [[delay_ms:200]]")  # the whole reply takes about 2 s
    left_at = await _leave_early(gateway, user, body)
    assert user.apikey is not None
    await wait_for_outcome(system, user.apikey, "cancelled", timeout=5)
    assert time.monotonic() - left_at < 1.5
    await asyncio.sleep(0.5)
    assert await conversation_count(gateway, user) == 0
    assert outbox_rows(system, user_id=user.id) == []
    assert await stream_events(stream_redis, user_id=user.id) == []


async def test_reply_ending_while_redis_is_down_is_published_once_it_is_back(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    system.redis.stop()
    try:
        response = await gateway.post(CHAT, json=chat_body("kept safe"), headers=user.headers)
        assert response.status_code == 200, response.text
        conversation_id = int(response.headers["X-Conversation-Id"])
        (row,) = outbox_rows(system, user_id=user.id)
        assert row["payload"]["conversation_id"] == conversation_id
        assert row["payload"]["assistant_content"] == "Echo: kept safe"
        await asyncio.sleep(0.6)  # the relay has tried (and failed) a few times by now
        (row,) = outbox_rows(system, user_id=user.id)
        assert row["published_at"] is None
        assert row["attempts"] >= 1
    finally:
        system.redis.start()

    event = await wait_for_event(stream_redis, conversation_id=conversation_id, timeout=15, settle=1.0)
    assert event["assistant_content"] == "Echo: kept safe"
    assert event["event_id"] == row["payload"]["event_id"]
    (row,) = outbox_rows(system, user_id=user.id)
    assert row["published_at"] is not None


async def test_replies_ending_after_an_outage_queue_behind_the_kept_ones(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """The first reply ends while Redis is down, the second right after it is back: the second must not
    overtake the first on the stream (its messages would be stored before the earlier turn's)."""
    user = await new_user(gateway)
    system.redis.stop()
    try:
        first = await gateway.post(CHAT, json=chat_body("turn one"), headers=user.headers)
        assert first.status_code == 200, first.text
    finally:
        system.redis.start()
    conversation_id = int(first.headers["X-Conversation-Id"])
    body = {**chat_body("turn two"), "conversation_id": conversation_id}
    second = await gateway.post(CHAT, json=body, headers=user.headers)
    assert second.status_code == 200, second.text

    deadline = time.monotonic() + 15
    events: list[dict[str, Any]] = []
    while len(events) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        events = await stream_events(stream_redis, conversation_id=conversation_id)
    assert [event["assistant_content"] for event in events] == ["Echo: turn one", "Echo: turn two"]


@contextlib.contextmanager
def refusing_connections(database: ScratchDatabase) -> Iterator[None]:
    """The run's own database refuses new connections and its open ones are cut, as an outage looks to
    the services; it accepts them again when the block ends, however it ends."""
    name = sql.Identifier(database.name)
    with psycopg.connect(PG_SERVER_URL, autocommit=True) as admin:  # from outside the database itself
        try:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database.name,)
            )
            yield
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))


async def test_a_reply_ending_while_redis_hangs_is_not_held_up_and_is_published_once_redis_answers(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """A Redis that hangs (SIGSTOP) rather than refusing: the client gets `[DONE]` after a short wait
    for the XADD (not PUBLISH_TIMEOUT_S), and the outbox keeps the event. The XADD given up on may still
    run once Redis resumes (it was sent), so the event may be on the stream twice: applied once."""
    user = await new_user(gateway)
    redis_pid = system.redis.pid
    assert redis_pid is not None
    try:
        async with gateway.stream(
            "POST", CHAT, json=chat_body("[[tokens:40]] [[delay_ms:20]]", stream=True), headers=user.headers
        ) as response:
            conversation_id = int(response.headers["X-Conversation-Id"])
            os.kill(redis_pid, signal.SIGSTOP)
            arrivals = [(time.monotonic(), piece) async for piece in response.aiter_raw()]
        body = b"".join(piece for _, piece in arrivals)
        assert body.endswith(b"data: [DONE]\n\n") and b'"finish_reason":"stop"' in body
        final_at = next(at for at, piece in arrivals if b'"finish_reason":"stop"' in piece)
        assert 1.5 < arrivals[-1][0] - final_at < 4.5  # `[DONE]` waited 2 s for the XADD, not the relay's 5 s
        (row,) = await eventually(lambda: outbox_rows(system, user_id=user.id))
        assert row["published_at"] is None
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    events = await eventually(
        lambda: stream_events(stream_redis, conversation_id=conversation_id), timeout=15
    )
    assert {event["event_id"] for event in events} == {row["payload"]["event_id"]}
    assert events[0]["status"] == "completed" and events[0]["assistant_content"] == filler(40)

    async def stored() -> list[Any]:
        response = await gateway.get(f"/api/conversations/{conversation_id}/messages", headers=user.headers)
        return list(response.json()["data"])

    await eventually(stored)
    await asyncio.sleep(1.0)  # a second application would show by now
    assert [message["role"] for message in await stored()] == ["user", "assistant"]


HELD = "completion event held in memory"


async def test_a_reply_ending_while_redis_and_the_database_are_down_is_published_once_they_are_back(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """Neither the stream nor the outbox can take the event: it is held in memory and retried, and the
    client's stream does not wait for that."""
    user = await new_user(gateway)
    body = chat_body("[[tokens:200]] [[delay_ms:30]]", stream=True)  # 50 pieces over about 1.5 s
    received = b""
    held_before = system.log("llm").count(HELD)
    try:
        async with gateway.stream("POST", CHAT, json=body, headers=user.headers) as response:
            assert response.status_code == 200
            conversation_id = int(response.headers["X-Conversation-Id"])
            with refusing_connections(system.database):
                system.redis.stop()
                started = time.monotonic()
                async for piece in response.aiter_raw():
                    received += piece
                # The stream did not wait for the retries (which last until both are back, below).
                assert time.monotonic() - started < 10
                await asyncio.sleep(3)  # the reply ended while both were down; they stay down a while
                assert system.log("llm").count(HELD) == held_before + 1  # so its event was held
    finally:
        system.redis.start()
    frames = [frame_data(frame) for frame in received.removesuffix(b"\n\n").split(b"\n\n")]
    assert frames[-1] == "[DONE]" and frames[-2]["finish_reason"] == "stop"
    assert "".join(frame["content"] for frame in frames[:-1]) == filler(200)

    event = await wait_for_event(stream_redis, conversation_id=conversation_id, timeout=15, settle=1.0)
    assert event["status"] == "completed"
    assert event["assistant_content"] == filler(200)


async def test_an_outbox_row_no_consumer_accepts_is_still_relayed_and_does_not_block_the_rest(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """Published as stored (the consumers dead-letter what they cannot read), so one bad row cannot hold
    back the rows after it."""
    user = await new_user(gateway)
    marker = f"not-an-event-{user.id}"
    with system.database.connect() as conn:
        conn.execute(
            "INSERT INTO aigcspace.llm_outbox (event_id, payload) VALUES (gen_random_uuid(), %s::jsonb)",
            (json.dumps({"schema_version": 99, "user_id": user.id, "marker": marker}),),
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        row["published_at"] for row in outbox_rows(system, user_id=user.id)
    ):
        await asyncio.sleep(0.1)
    (row,) = outbox_rows(system, user_id=user.id)
    assert row["published_at"] is not None
    assert any(marker in fields["event"] for _, fields in await stream_redis.xrange(COMPLETION_STREAM))


async def _stream_while_llm_service_stops(
    gateway: httpx.AsyncClient, system: System, headers: dict[str, str], body: dict[str, Any]
) -> tuple[list[Any], int]:
    """Stream a chat, stopping llm-service (SIGTERM) as soon as its first bytes arrive; the frames the
    client got and the conversation. llm-service is started again afterwards."""
    try:
        received, conversation_id = await stream_stopping(gateway, system, "llm", body=body, headers=headers)
    finally:
        await asyncio.to_thread(system.start, "llm")
    return [frame_data(frame) for frame in received.removesuffix(b"\n\n").split(b"\n\n")], conversation_id


async def test_a_stream_in_flight_when_the_service_stops_is_finished(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """A deploy stops llm-service: a reply shorter than SHUTDOWN_GRACE_SECONDS is written to its end."""
    user = await new_user(gateway)
    body = chat_body("[[tokens:300]] [[delay_ms:20]]", stream=True)  # 75 pieces over about 1.5 s
    frames, conversation_id = await _stream_while_llm_service_stops(gateway, system, user.headers, body)
    assert frames[-1] == "[DONE]" and frames[-2]["finish_reason"] == "stop"
    assert "".join(frame["content"] for frame in frames[:-1]) == filler(300)
    event = await wait_for_event(stream_redis, conversation_id=conversation_id, timeout=10)
    assert event["status"] == "completed"


async def test_a_stream_cut_by_a_restart_is_recorded_and_ends_with_an_error_frame(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """SIGTERM: uvicorn lets requests run SHUTDOWN_GRACE_SECONDS (5 in the tests), then cancels them.
    The cut stream is still recorded (the process waits for it before closing Redis and the database),
    and the gateway ends it for the client as a failure mid-stream."""
    user = await new_user(gateway)
    body = chat_body("[[tokens:2000]] [[delay_ms:20]]", stream=True)  # 500 pieces over about 10 s
    frames, conversation_id = await _stream_while_llm_service_stops(gateway, system, user.headers, body)
    assert frames[-1] == "[DONE]"
    assert frames[-2]["finish_reason"] == "error" and frames[-2]["error"]["code"] == "InternalError"
    sent = "".join(frame["content"] for frame in frames[:-2])
    assert 0 < len(sent) < 2000

    event = await wait_for_event(stream_redis, conversation_id=conversation_id, timeout=10)
    assert event["status"] == "interrupted"
    assert event["assistant_content"].startswith(sent)
    assert filler(2000).startswith(event["assistant_content"])
    assert event["usage"]["output_tokens"] == len(event["assistant_content"])


async def test_a_stream_is_kept_in_flight_until_its_event_is_recorded(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """While the stream runs, its event as it stands is in the outbox under a lease; once it ended, the
    final event is on the stream (once) and the row is gone."""
    user = await new_user(gateway)
    prompt = "[[tokens:400]] [[delay_ms:20]]"  # 100 pieces over about 2 s: kept from its first second
    async with gateway.stream(
        "POST", CHAT, json=chat_body(prompt, stream=True), headers=user.headers
    ) as response:
        assert response.status_code == 200
        conversation_id = int(response.headers["X-Conversation-Id"])
        (row,) = await eventually(lambda: outbox_rows(system, user_id=user.id))
        assert row["lease_until"] is not None and row["published_at"] is None
        assert row["payload"]["status"] == "interrupted"
        assert row["payload"]["usage"]["input_tokens"] == len(prompt)
        await response.aread()

    event = await wait_for_event(stream_redis, conversation_id=conversation_id)
    assert event["status"] == "completed" and event["assistant_content"] == filler(400)
    assert event["event_id"] == row["payload"]["event_id"]
    await eventually(lambda: outbox_rows(system, user_id=user.id) == [])


async def test_a_stream_shorter_than_a_second_is_never_kept_in_flight(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """Most replies of a busy service are short: they cost no write (JOURNAL_AFTER_SECONDS)."""
    user = await new_user(gateway)
    seen: list[list[dict[str, Any]]] = []
    async with gateway.stream(
        "POST", CHAT, json=chat_body("[[tokens:100]] [[delay_ms:20]]", stream=True), headers=user.headers
    ) as response:  # 25 pieces over about 0.5 s, the outbox looked at all along
        conversation_id = int(response.headers["X-Conversation-Id"])
        async for _ in response.aiter_raw():
            seen.append(outbox_rows(system, user_id=user.id))
    assert len(seen) > 10 and not any(seen)
    assert (await wait_for_event(stream_redis, conversation_id=conversation_id))["status"] == "completed"


async def test_a_stream_ending_while_redis_is_down_turns_its_row_in_flight_into_its_event(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    user = await new_user(gateway)
    body = chat_body("[[tokens:400]] [[delay_ms:20]]", stream=True)  # 100 pieces over about 2 s
    try:
        async with gateway.stream("POST", CHAT, json=body, headers=user.headers) as response:
            assert response.status_code == 200
            conversation_id = int(response.headers["X-Conversation-Id"])
            (in_flight,) = await eventually(lambda: outbox_rows(system, user_id=user.id))
            await asyncio.to_thread(system.redis.stop)
            await response.aread()
        (row,) = outbox_rows(system, user_id=user.id)  # recorded before the stream's last frame
        assert row["lease_until"] is None and row["published_at"] is None
        assert row["payload"]["event_id"] == in_flight["payload"]["event_id"]
        assert row["payload"]["status"] == "completed" and row["payload"]["assistant_content"] == filler(400)
    finally:
        await asyncio.to_thread(system.redis.start)
    event = await wait_for_event(stream_redis, conversation_id=conversation_id, timeout=15, settle=1.0)
    assert event["status"] == "completed" and event["assistant_content"] == filler(400)


# Short enough that a killed process's rows are published a moment after it is started again.
IN_FLIGHT_TUNING = {
    "JOURNAL_LEASE_SECONDS": "1",
    "JOURNAL_RENEW_SECONDS": "0.2",
    "JOURNAL_AFTER_SECONDS": "0.2",
}


async def _stream_into(
    gateway: httpx.AsyncClient, user: UserSession, body: dict[str, Any], received: list[bytes]
) -> int:
    """Stream a chat to its end (or the gateway's error frame), appending what arrives; the conversation."""
    async with gateway.stream("POST", CHAT, json=body, headers=user.headers) as response:
        assert response.status_code == 200
        async for piece in response.aiter_raw():
            received.append(piece)
        return int(response.headers["X-Conversation-Id"])


async def test_streams_of_a_killed_service_are_recorded_from_their_last_checkpoint(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """SIGKILL (an OOM kill, a crash) in the middle of two streams, one of a new conversation and one of
    an existing one: once the leases of their rows in flight expired, each reply is recorded as
    interrupted from its last checkpoint, with the input tokens DashScope charged for."""
    user = await new_user(gateway)
    response = await gateway.post("/api/conversations", json={"title": "existing"}, headers=user.headers)
    existing = response.json()["data"]["id"]
    prompt = "[[tokens:2000]] [[delay_ms:20]]"  # 500 pieces over about 10 s
    bodies = [chat_body(prompt, stream=True), {**chat_body(prompt, stream=True), "conversation_id": existing}]
    received: list[list[bytes]] = [[], []]
    await asyncio.to_thread(system.stop, "llm")
    try:
        await asyncio.to_thread(system.start, "llm", extra_env=IN_FLIGHT_TUNING)
        streams = [
            asyncio.create_task(_stream_into(gateway, user, body, into))
            for body, into in zip(bodies, received, strict=True)
        ]
        await eventually(lambda: all(received))
        await asyncio.sleep(0.7)  # a few checkpoints
        os.kill(system.pid("llm"), signal.SIGKILL)
        conversation_ids = await asyncio.gather(*streams)
    finally:
        await asyncio.to_thread(system.stop, "llm")  # reaps the killed process
        await asyncio.to_thread(system.start, "llm")
    assert conversation_ids[1] == existing

    for conversation_id, pieces in zip(conversation_ids, received, strict=True):
        frames = [frame_data(frame) for frame in b"".join(pieces).removesuffix(b"\n\n").split(b"\n\n")]
        assert frames[-1] == "[DONE]" and frames[-2]["finish_reason"] == "error"
        sent = "".join(frame["content"] for frame in frames[:-2])
        assert 0 < len(sent) < 2000

        event = await wait_for_event(stream_redis, conversation_id=conversation_id, timeout=15, settle=1.0)
        assert event["status"] == "interrupted"
        assert sent.startswith(event["assistant_content"])
        assert event["usage"]["input_tokens"] == len(prompt)
        assert event["usage"]["output_tokens"] == len(event["assistant_content"])

        async def stored(conversation_id: int = conversation_id) -> list[dict[str, Any]]:
            response = await gateway.get(
                f"/api/conversations/{conversation_id}/messages", headers=user.headers
            )
            return list(response.json()["data"])

        user_message, assistant_message = await eventually(stored)
        assert (user_message["role"], user_message["content"]) == ("user", prompt)
        assert user_message["input_tokens"] == len(prompt)
        assert assistant_message["role"] == "assistant"
        assert assistant_message["content"] == event["assistant_content"]


async def test_a_held_final_event_wins_over_its_checkpoint_whose_lease_ran_out_meanwhile(
    gateway: httpx.AsyncClient, system: System, stream_redis: Any
) -> None:
    """Redis and the database away longer than the lease while a stream ends: once both are back, the
    relay leaves the expired checkpoint of this live process alone, the held final event is recorded,
    and the row in flight goes."""
    user = await new_user(gateway)
    body = chat_body("[[tokens:100]] [[delay_ms:20]]", stream=True)  # 25 pieces over about 0.5 s
    await asyncio.to_thread(system.stop, "llm")
    try:
        await asyncio.to_thread(system.start, "llm", extra_env=IN_FLIGHT_TUNING)
        try:
            async with gateway.stream("POST", CHAT, json=body, headers=user.headers) as response:
                conversation_id = int(response.headers["X-Conversation-Id"])
                (checkpoint,) = await eventually(lambda: outbox_rows(system, user_id=user.id))
                with refusing_connections(system.database):
                    system.redis.stop()
                    await response.aread()
                    await asyncio.sleep(3)  # the lease (1 s) runs out meanwhile
        finally:
            system.redis.start()
        event = await wait_for_event(stream_redis, conversation_id=conversation_id, timeout=20, settle=2.0)
        assert event["event_id"] == checkpoint["payload"]["event_id"]
        assert event["status"] == "completed" and event["assistant_content"] == filler(100)
        await eventually(lambda: outbox_rows(system, user_id=user.id) == [], timeout=10)
    finally:
        await asyncio.to_thread(system.stop, "llm")
        await asyncio.to_thread(system.start, "llm")
