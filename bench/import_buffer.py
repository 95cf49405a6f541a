"""Benchmark: why the event import buffers occurrences in the database, not Redis.

Stores 200,000 occurrence rows of `Occurrence`'s shape (tenant, event key, occurred
and received ms, the LaunchDarkly body as JSON text) the ways the track endpoint
could, in chunks of 500 (one request's worth), each chunk committed on its own:

- PostgreSQL, Django `bulk_create` (one INSERT of many rows per chunk);
- PostgreSQL, psycopg `COPY ... FROM STDIN` per chunk;
- Redis, `XADD` to a stream, pipelined per chunk.

and prints rows/s for each, with what each makes durable: PostgreSQL fsyncs its WAL
at every commit (synchronous_commit, as configured, is printed); the Redis here runs
with `--appendonly no --save ""`, so an XADD acknowledged is gone with a restart.

Needs DATABASE_URL (PostgreSQL) and REDIS_URL; without them it says why and skips.
Environment: BENCH_BUFFER_ROWS (default 200000).
"""

from __future__ import annotations

import json
import os
import time

import _harness as harness

ROWS = int(os.environ.get("BENCH_BUFFER_ROWS", "200000"))
CHUNK = 500
STREAM = "bench:import-buffer"


def rows(tenant_id: int, count: int) -> list[tuple[int, str, int, int, str]]:
    now_ms = int(time.time() * 1000)
    out = []
    for n in range(count):
        key = f"bench_event_{n % 20:05d}"
        body = {
            "kind": "custom",
            "key": key,
            "creationDate": now_ms - n % 1000,
            "contextKeys": {"user": f"user-{n % 50_000}"},
        }
        out.append(
            (tenant_id, key, now_ms - n % 1000, now_ms, json.dumps(body, separators=(",", ":")))
        )
    return out


def chunks(data: list, size: int = CHUNK):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def timed(store, data) -> float:
    started = time.perf_counter()
    for chunk in chunks(data):
        store(chunk)
    return len(data) / (time.perf_counter() - started)


def main() -> None:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        print(
            "import_buffer: skipped; it compares PostgreSQL with Redis, so it needs "
            "DATABASE_URL naming a PostgreSQL server and REDIS_URL "
            f"(DATABASE_URL {'set' if database_url else 'unset'}, "
            f"REDIS_URL {'set' if redis_url else 'unset'})"
        )
        return
    harness.setup("import_buffer")
    import redis
    from django.db import connection, transaction

    from connector.imports.models import Occurrence
    from tenants.models import Tenant
    from tenants.scope import tenant_scope

    tenant = Tenant.objects.create(name="Buffer", slug="buffer")
    data = rows(tenant.pk, ROWS)
    fields = ("tenant_id", "event_key", "occurred_at_ms", "received_at_ms", "body")

    def bulk_create(chunk) -> None:
        with transaction.atomic():
            Occurrence.objects.bulk_create(
                Occurrence(**dict(zip(fields, r, strict=True))) for r in chunk
            )

    copy_sql = f"COPY imports_occurrence ({', '.join(fields)}) FROM STDIN"

    def copy(chunk) -> None:
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.cursor.copy(copy_sql) as stream,
        ):
            for row in chunk:
                stream.write_row(row)

    client = redis.Redis.from_url(redis_url)
    client.delete(STREAM)

    def xadd(chunk) -> None:
        pipe = client.pipeline(transaction=False)
        for row in chunk:
            pipe.xadd(STREAM, dict(zip(fields, row, strict=True)))
        pipe.execute()

    try:
        with tenant_scope(tenant):
            bulk = timed(bulk_create, data)
            Occurrence.objects.all().delete()
            copied = timed(copy, data)
            stored = Occurrence.objects.count()
        streamed = timed(xadd, data)
        in_stream = client.xlen(STREAM)
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            (sync_commit,) = cursor.fetchone()
        persistence = client.config_get("appendonly") | client.config_get("save")
    finally:
        client.delete(STREAM)
    appendonly, save = persistence.get("appendonly"), persistence.get("save")
    redis_durability = f"appendonly={appendonly!r} save={save!r}"
    if appendonly == "no" and not save:
        redis_durability += ": an acknowledged XADD does not survive a restart"
    if stored != ROWS or in_stream != ROWS:
        print(f"FAIL: stored {stored} rows by COPY, {in_stream} stream entries; expected {ROWS}")
    harness.report(
        "import_buffer",
        {
            "rows": (ROWS, "rows"),
            "chunk": (CHUNK, "rows per commit"),
            "postgresql_bulk_create_rows_per_s": (round(bulk), "rows/s"),
            "postgresql_copy_rows_per_s": (round(copied), "rows/s"),
            "redis_xadd_pipelined_rows_per_s": (round(streamed), "rows/s"),
            "postgresql_durability": (
                f"WAL flushed at each commit (synchronous_commit={sync_commit})",
                "",
            ),
            "redis_durability": (redis_durability, ""),
        },
    )
    harness.cleanup()


if __name__ == "__main__":
    main()
