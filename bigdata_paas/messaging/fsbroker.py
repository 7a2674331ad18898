"""kombu's filesystem transport, publishing each message atomically.

kombu creates a message file in the queue folder and only then writes it, so a
worker polling that folder can take the file in between, read it empty and die
with "Unrecoverable error: JSONDecodeError" (celery/kombu#1551). Here a message
is written in a staging folder on the same filesystem and renamed into the
queue folder: consumers only ever see whole messages.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` onto ``queue``: write it aside, then rename it into the folder."""
        staging = self.transport_options.get("staging_folder")
        if not staging:
            return super()._put(queue, payload, **kwargs)
        # kombu's name: consumers take messages in the order of this millisecond prefix.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        staged = os.path.join(staging, name)
        try:
            with open(staged, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(staged, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc
        return None


class Transport(filesystem.Transport):
    Channel = Channel
