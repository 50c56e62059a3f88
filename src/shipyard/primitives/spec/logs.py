"""``[logs]``: how much log shipyard keeps — per file by size (rotation) and in all by age.

    [logs]
    max_size = "10MiB"   # a live file past this is rotated (instances' output, the control plane's log)
    keep = 5             # rotated copies kept per file (.1 … .keep)
    max_age = "14d"      # rotated copies, and the logs of instances gone, older than this are deleted
    timestamps = false   # true: the time before each line of instance output, as it is written

Read when ``shipyard up`` starts. The router's access log rotates at its own 50 MiB (×5); ``max_age``
prunes its copies too.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

from shipyard.primitives.spec.base import LongDuration, SpecModel
from shipyard.primitives.spec.sizes import Size

MIN_SIZE = 64 * 1024  # a smaller file would rotate on every burst of a busy instance
MAX_SIZE = 10 * 1024**3
HOUR = 3600.0


class LogsSpec(SpecModel):
    max_size: Annotated[Size, Field(ge=MIN_SIZE, le=MAX_SIZE)] = 10 * 1024**2
    keep: Annotated[int, Field(ge=0, le=100)] = 5
    max_age: Annotated[LongDuration, Field(ge=HOUR, le=365 * 86400.0)] = 14 * 86400.0
    # Off by default: stamping costs a small process per instance, and many apps stamp their own lines.
    timestamps: StrictBool = False
