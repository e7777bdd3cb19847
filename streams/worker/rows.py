"""How link-store and user-state rows are kept in RocksDB: compact JSON through orjson."""

from __future__ import annotations

from typing import Any

import orjson

#: The format of the link store and the user states on disk, which a store keeps (the link
#: store as its "rebuilt" mark): a store of another format is rebuilt from the changelog, never
#: read. 2: a user's state is one entry of the user states (`references._state_entry`), where 1
#: kept its command and what it names apart.
FORMAT = b"2"


def dump_row(row: Any) -> bytes:
    """The row as JSON bytes; partition numbers as keys become strings, as json.dumps made them."""
    return orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS)


def load_row(raw: bytes) -> Any:
    """A row back, whether orjson wrote it or json.dumps did (stores written before orjson)."""
    return orjson.loads(raw)
