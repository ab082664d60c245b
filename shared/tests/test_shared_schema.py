"""The migrations and the ORM models describe the same schema; migrating twice changes nothing."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shared.db import SCHEMA, Base, sync_database_url
from sqlalchemy import MetaData, create_engine, inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Inspector
from sqlalchemy.types import TypeEngine

from testkit import ScratchDatabase

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODEL_MODULES = ["llm_service.models", "conversation_service.models", "billing_service.models"]


def _all_metadata() -> MetaData:
    importlib.import_module("shared.models")
    for module in SERVICE_MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata


@pytest.fixture(scope="module")
def inspector(database: ScratchDatabase) -> Inspector:
    engine = create_engine(sync_database_url(database.url))
    return inspect(engine)


CONTRACT_TABLES = {
    "users": {"id", "username", "password_hash", "apikey", "is_active", "created_at", "updated_at"},
    "model": {
        "id",
        "name",
        "display_name",
        "category",
        "description",
        "is_active",
        "created_at",
        "updated_at",
    },
    "model_price": {
        "id",
        "model_id",
        "billing_mode",
        "input_price",
        "output_price",
        "currency",
        "created_at",
        "updated_at",
    },
    "model_price_tier": {"id", "price_id", "min_tokens", "max_tokens", "input_price", "output_price"},
    "ai_conversation": {
        "id",
        "user_id",
        "title",
        "total_input_tokens",
        "total_output_tokens",
        "total_tokens",
        "bill",
        "created_at",
        "updated_at",
    },
    "ai_message": {
        "id",
        "conversation_id",
        "role",
        "content",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "model_id",
        "model_name",
        "created_at",
    },
}


def test_contract_tables_and_columns_exist(inspector: Inspector) -> None:
    tables = set(inspector.get_table_names(schema=SCHEMA))
    for table, columns in CONTRACT_TABLES.items():
        assert table in tables
        assert {c["name"] for c in inspector.get_columns(table, schema=SCHEMA)} >= columns, table


def test_orm_models_match_the_migrated_schema(inspector: Inspector) -> None:
    metadata = _all_metadata()
    migrated = set(inspector.get_table_names(schema=SCHEMA))
    modelled = {table.name for table in metadata.tables.values()}
    assert modelled <= migrated, f"modelled but not migrated: {modelled - migrated}"
    for table in metadata.tables.values():
        columns = {c["name"]: c for c in inspector.get_columns(table.name, schema=SCHEMA)}
        assert set(columns) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            actual = columns[column.name]
            assert actual["nullable"] == column.nullable, f"{table.name}.{column.name} nullability"
            assert _type_name(actual["type"]) == _type_name(column.type), f"{table.name}.{column.name} type"
        pk = inspector.get_pk_constraint(table.name, schema=SCHEMA)["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], table.name
        foreign = {
            (
                tuple(fk["constrained_columns"]),
                fk["referred_table"],
                (fk.get("options") or {}).get("ondelete"),
            )
            for fk in inspector.get_foreign_keys(table.name, schema=SCHEMA)
        }
        expected = {((fk.parent.name,), fk.column.table.name, fk.ondelete) for fk in table.foreign_keys}
        assert foreign == expected, table.name


def _type_name(type_: TypeEngine[object]) -> str:
    return str(type_.compile(dialect=postgresql.dialect()))


def test_checks_hold(inspector: Inspector) -> None:
    checks = {c["name"]: c["sqltext"] for c in inspector.get_check_constraints("ai_message", schema=SCHEMA)}
    assert "role" in checks["ck_ai_message_role"]
    checks = {c["name"]: c["sqltext"] for c in inspector.get_check_constraints("model_price", schema=SCHEMA)}
    assert "billing_mode" in checks["ck_model_price_billing_mode"]


def test_second_migration_run_changes_nothing(database: ScratchDatabase) -> None:
    env = {**os.environ, "DATABASE_URL": database.url}
    result = subprocess.run(
        [sys.executable, "-m", "shared.bootstrap", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "migrations applied: 0" in result.stdout
