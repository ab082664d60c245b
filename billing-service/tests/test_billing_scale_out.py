"""Scale-out: extra consumer processes in the same groups share the work and apply each event once."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx

from testkit import ServiceChat, System, eventually, publish_events, stop_processes

EVENTS = 200


def applied_counts(system: System, labels: list[str]) -> dict[str, int]:
    """How many entries each stopped consumer process acknowledged (from its last log line)."""
    counts = {}
    for label in labels:
        for line in (system.workdir / f"{label}.log").read_text(errors="replace").splitlines():
            if '"consumer process stopped"' in line:
                counts[label] = int(json.loads(line)["applied"])
    return counts


async def test_two_extra_consumers_per_group_apply_200_events_exactly_once(
    system: System, conversation_api: httpx.AsyncClient, stream_redis: Any, consumer_processes: Any
) -> None:
    chat = await ServiceChat(system, conversation_api).start()
    labels = ["conv-scale-1", "conv-scale-2", "bill-scale-1", "bill-scale-2"]
    modules = ["conversation_service.consumer"] * 2 + ["billing_service.consumer"] * 2
    # Small batches, so the in-service consumers and the extra ones all get a share.
    processes = consumer_processes(*zip(modules, labels, strict=True), extra_env={"CONSUMER_BATCH_SIZE": "5"})
    # qwen-turbo (simple): 7 input + 3 output tokens cost 0.0000039 each; 200 of them 0.00078.
    events = [chat.event(f"m{i}", input_tokens=7, output_tokens=3, model="qwen-turbo") for i in range(EVENTS)]
    try:
        await publish_events(stream_redis, *events, atomic=True)  # all at once: every consumer gets some

        def counts() -> tuple[int, int] | None:
            with system.database.connect() as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM aigcspace.billing_ledger WHERE conversation_id = %(c)s),"
                    " (SELECT count(*) FROM aigcspace.ai_message WHERE conversation_id = %(c)s)",
                    {"c": chat.conversation_id},
                ).fetchone()
            return (int(row[0]), int(row[1])) if row else None

        try:
            await eventually(lambda: counts() == (EVENTS, 2 * EVENTS), timeout=30)
        except AssertionError:
            logs = {name: system.log(name)[-3000:] for name in (*labels, "conversation", "billing")}
            raise AssertionError(f"ledger lines, messages: {counts()}; logs: {logs}") from None
    finally:
        stop_processes(processes)  # SIGTERM: each logs how many entries it applied

    detail = await chat.detail()
    assert len(detail["messages"]) == 2 * EVENTS
    user_contents = [m["content"] for m in detail["messages"] if m["role"] == "user"]
    assert sorted(user_contents) == sorted(f"m{i}" for i in range(EVENTS))  # each event stored once
    pairs = zip(detail["messages"][::2], detail["messages"][1::2], strict=True)
    assert all(a["content"] == f"Echo: {u['content']}" for u, a in pairs)  # an event's messages stay together
    assert detail["total_input_tokens"] == 7 * EVENTS
    assert detail["total_output_tokens"] == 3 * EVENTS
    assert detail["total_tokens"] == 10 * EVENTS
    assert detail["bill"] == "0.0008"
    with system.database.connect() as conn:
        row = conn.execute(
            "SELECT sum(cost), count(DISTINCT event_id) FROM aigcspace.billing_ledger WHERE conversation_id = %s",
            (chat.conversation_id,),
        ).fetchone()
    assert row == (Decimal("0.00078"), EVENTS)
    applied = applied_counts(system, labels)
    assert all(applied.get(label, 0) > 0 for label in labels), applied
