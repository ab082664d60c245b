"""Demo rows for the dev run: the `demo` user and models with DashScope's list prices (CNY / 1K tokens).

Loaded idempotently: rows that exist are left as they are, so operators' edits survive a restart.
"""

from __future__ import annotations

from decimal import Decimal

import psycopg

from shared.security import ApiKeyCipher, hash_password

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the documented demo account of the dev run
DEMO_APIKEY = "sk-demo-standin-key-0001"

D = Decimal
# name, display name, category, description, billing mode, simple prices, tiers (min, max, in, out)
MODELS: list[
    tuple[
        str,
        str,
        int,
        str,
        str | None,
        tuple[Decimal, Decimal] | None,
        list[tuple[int, int | None, Decimal, Decimal]],
    ]
] = [
    (
        "qwen-turbo",
        "Qwen Turbo",
        0,
        "Fast and inexpensive, for simple tasks.",
        "simple",
        (D("0.0003"), D("0.0006")),
        [],
    ),
    (
        "qwen-plus",
        "Qwen Plus",
        0,
        "Balanced quality, speed and cost.",
        "tier",
        None,
        [
            (0, 128_000, D("0.0008"), D("0.002")),
            (128_000, 256_000, D("0.0024"), D("0.02")),
            (256_000, 1_000_000, D("0.0048"), D("0.048")),
        ],
    ),
    (
        "qwen-max",
        "Qwen Max",
        0,
        "The most capable Qwen model for complex tasks.",
        "simple",
        (D("0.0024"), D("0.0096")),
        [],
    ),
    (
        "qwen3-max",
        "Qwen3 Max",
        0,
        "Qwen3 flagship, tiered by input length.",
        "tier",
        None,
        [
            (0, 32_000, D("0.0025"), D("0.01")),
            (32_000, 128_000, D("0.004"), D("0.016")),
            (128_000, 252_000, D("0.007"), D("0.028")),
        ],
    ),
    (
        "wanx2.1-t2i-turbo",
        "Wanx 2.1 Text-to-Image Turbo",
        1,
        "An image model: not usable for chat.",
        None,
        None,
        [],
    ),
]


def load_demo_data(conn: psycopg.Connection, *, apikey_secret: str) -> None:
    """Insert the demo user and models where missing, in one transaction.

    A demo key stored under another APIKEY_ENCRYPTION_KEY (a fresh `.env` against an existing
    database) is stored again under this one, so the demo user can chat; a removed one stays removed.
    """
    cipher = ApiKeyCipher(apikey_secret)
    with conn.transaction():
        conn.execute(
            "INSERT INTO aigcspace.users (username, password_hash, apikey) VALUES (%s, %s, %s) "
            "ON CONFLICT (username) DO NOTHING",
            (DEMO_USERNAME, hash_password(DEMO_PASSWORD), cipher.encrypt(DEMO_APIKEY)),
        )
        row = conn.execute(
            "SELECT apikey FROM aigcspace.users WHERE username = %s", (DEMO_USERNAME,)
        ).fetchone()
        if row is not None and row[0] is not None and not cipher.opens(row[0]):
            conn.execute(
                "UPDATE aigcspace.users SET apikey = %s WHERE username = %s",
                (cipher.encrypt(DEMO_APIKEY), DEMO_USERNAME),
            )
        for name, display, category, description, mode, simple, tiers in MODELS:
            row = conn.execute(
                "INSERT INTO aigcspace.model (name, display_name, category, description) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING id",
                (name, display, category, description),
            ).fetchone()
            if row is None or mode is None:
                continue  # existing model: leave it and its price to the operator
            price_in, price_out = simple or (None, None)
            price_row = conn.execute(
                "INSERT INTO aigcspace.model_price (model_id, billing_mode, input_price, output_price) "
                "VALUES (%s, %s, %s, %s) RETURNING id",
                (row[0], mode, price_in, price_out),
            ).fetchone()
            assert price_row is not None
            for low, high, tier_in, tier_out in tiers:
                conn.execute(
                    "INSERT INTO aigcspace.model_price_tier (price_id, min_tokens, max_tokens, "
                    "input_price, output_price) VALUES (%s, %s, %s, %s, %s)",
                    (price_row[0], low, high, tier_in, tier_out),
                )
