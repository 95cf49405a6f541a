"""The embedded broker (connector/broker.py): under concurrent producers and consumers
on one folder, each in its own process as web and workers are, every message arrives
whole, exactly once. (kombu's own filesystem transport fails this: a consumer takes a
message file before its producer has written it.)"""

import multiprocessing
import threading
import traceback
from queue import Empty

from kombu import Connection

from connector.broker import Transport

PRODUCERS, THREADS, CONSUMERS, PER_PRODUCER = 4, 4, 4, 250


def _connection(folder):
    return Connection(
        transport=Transport,
        transport_options={
            "data_folder_in": str(folder / "out"),
            "data_folder_out": str(folder / "out"),
            "control_folder": str(folder / "control"),
            "work_folder": str(folder / "work"),
        },
    )


def _produce(folder, n: int) -> None:
    # Several threads per process, as in a threads-pool worker: a thread can lose the
    # GIL between creating a message's file and writing it.
    def put_share(t: int) -> None:
        with _connection(folder) as connection:
            queue = connection.SimpleQueue("items")
            for i in range(t, PER_PRODUCER, THREADS):
                queue.put({"id": f"{n}-{i}", "padding": "x" * 2000})
            queue.close()

    threads = [threading.Thread(target=put_share, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _consume(folder, producing, results) -> None:
    received: list[str] = []
    try:
        with _connection(folder) as connection:
            queue = connection.SimpleQueue("items")
            while True:
                try:
                    message = queue.get(block=True, timeout=0.2)
                except Empty:
                    if not producing.is_set():
                        break
                    continue
                if message.payload["padding"] != "x" * 2000:
                    raise ValueError(f"message {message.payload['id']} arrived damaged")
                received.append(message.payload["id"])
                message.ack()
            queue.close()
    except Exception:  # a half-written message surfaces here
        results.put((received, traceback.format_exc()))
    else:
        results.put((received, None))


def test_filesystem_broker__concurrent_producers_and_consumers__each_message_once_whole(
    tmp_path,
):
    for name in ("out", "control"):
        (tmp_path / name).mkdir()
    context = multiprocessing.get_context("fork")
    producing = context.Event()
    producing.set()
    results = context.Queue()
    consumers = [
        context.Process(target=_consume, args=(tmp_path, producing, results))
        for _ in range(CONSUMERS)
    ]
    producers = [context.Process(target=_produce, args=(tmp_path, n)) for n in range(PRODUCERS)]
    for process in consumers + producers:
        process.start()
    for process in producers:
        process.join(timeout=60)
    producing.clear()
    received, errors = [], []
    for _ in consumers:
        got, error = results.get(timeout=60)
        received += got
        errors += [error] if error else []
    for process in consumers:
        process.join(timeout=10)

    assert errors == [], errors[0]
    expected = {f"{n}-{i}" for n in range(PRODUCERS) for i in range(PER_PRODUCER)}
    assert sorted(received) == sorted(expected)  # each once: no loss, no duplicate
    assert list((tmp_path / "work").iterdir()) == []  # nothing half-written left behind
