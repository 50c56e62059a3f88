"""Sizes with units in shipyard.toml: ``"100MiB"``, ``"512 KB"``; a bare integer is a number of bytes.

Decimal units are powers of 1000 (KB, MB, GB), binary ones powers of 1024 (KiB, MiB, GiB); ``B`` is bytes.
Units are matched case-insensitively except that the ``i`` decides decimal or binary.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_EXPECTED = "expected a size like '100MiB', '512KB' or a number of bytes"


def parse_size(value: object) -> int:
    """``"100MiB"`` → 104857600, ``"1.5KB"`` → 1500, ``2048`` → 2048 (bytes)."""
    if isinstance(value, bool):
        raise ValueError(f"{_EXPECTED}, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = _SIZE.match(value)
        unit = _UNITS.get(m.group(2).lower()) if m else None
        if m is not None and unit is not None:
            n = float(m.group(1)) * unit
            if n.is_integer():
                return int(n)
            raise ValueError(f"size must be a whole number of bytes, got {value!r}")
    raise ValueError(f"{_EXPECTED} (units B, KB, KiB, MB, MiB, GB, GiB), got {value!r}")


# Held as an int number of bytes; bounds (ge/le) given with ``Field`` apply to the bytes.
Size = Annotated[int, BeforeValidator(parse_size)]
