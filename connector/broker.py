"""The embedded configuration's broker: kombu's filesystem transport, made safe for
several workers on one folder.

kombu (5.7) writes a message straight into the folder that consumers read, then
writes its content. A consumer listing the folder in between takes an empty file,
cannot decode it, and the worker stops with "Unrecoverable error": the worker is
gone and the message lost. Seen under load as the sync benchmark's workers dying.
Its consumer also moves messages to the system's temporary folder, which is a copy,
not an atomic rename, when that folder is on another filesystem.

The same holds for an exchange's table of queues, created empty and then written
while other workers starting at the same moment read it.

Here a message is written in a work folder beside the queue folder and renamed into
it once complete, and a consumer claims a message by renaming it into the work
folder: within one filesystem a rename is atomic, so a message appears whole and
exactly one consumer gets it. A new exchange table is linked into place complete.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property


class Channel(filesystem.Channel):
    @cached_property
    def work_folder(self) -> Path:
        folder = Path(self.transport_options.get("work_folder", "work"))
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _put(self, queue, payload, **kwargs):
        # The name keeps kombu's scheme (sorted by time, then the queue's name).
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        part = self.work_folder / f"{name}.part"
        part.write_text(dumps(payload))
        os.replace(part, os.path.join(self.data_folder_out, name))

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        table = self._exchange_file(exchange)
        if not table.exists():
            self.control_folder.mkdir(parents=True, exist_ok=True)
            entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
            part = self.work_folder / f"{uuid.uuid4()}.exchange.part"
            part.write_text(dumps([entry]))
            try:
                os.link(part, table)  # all or nothing, and never over another's table
                return
            except FileExistsError:
                pass  # another worker created it meanwhile: add to theirs
            finally:
                part.unlink()
        super()._queue_bind(exchange, routing_key, pattern, queue)

    def _get(self, queue):
        wanted = f"{queue}.msg"
        claimant = f"{os.getpid()}-{threading.get_ident()}"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = self.work_folder / f"{name}.{claimant}"
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                continue  # another consumer took it first
            try:
                return loads(claimed.read_text())
            finally:
                claimed.unlink()
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel

    @property
    def default_connection_params(self) -> dict:
        # A folder has no host: kombu's default of "localhost" only earns a warning
        # ("No hostname was supplied") at every start of a worker or beat.
        return {"port": self.default_port}
