"""RocksDB as the worker's stores use it: options, and writes gathered while rebuilding."""

from __future__ import annotations

from rocksdict import BlockBasedOptions, Options, Rdict, WriteBatch, WriteOptions


def without_wal() -> WriteOptions:
    """Writes of a store being rebuilt: lost in a crash, and then rebuilt again anyway."""
    options = WriteOptions()
    options.disable_wal = True  # type: ignore[method-assign,assignment]  # a property (stubs: a method)
    return options


def compacting(db: Rdict, on: bool) -> None:
    """Pause (while a store is rebuilt) or resume RocksDB's background compactions.

    A rebuild writes each key about once: compacting its files as they come cost half as much
    CPU again as taking the rows (at a million links), on the cores the rebuild needs. Paused,
    its level-0 files pile up (RocksDB stalls no writes for them then) and a read checks each
    one's bloom filter; the rebuilt store compacts them in the background once it is ready.
    """
    db.set_options({"disable_auto_compactions": "false" if on else "true"})


#: Each store's memtable (RocksDB's default is 64 MiB, up to two of them per store).
WRITE_BUFFER_BYTES = 16 * 2**20


def store_options() -> Options:
    """How the link store and the user states open RocksDB: smaller memtables than the
    defaults, flushed to disk sooner (the worker's RSS, not its speed, is what they bound),
    and bloom filters."""
    options = Options()
    options.create_if_missing(True)
    options.set_write_buffer_size(WRITE_BUFFER_BYTES)
    options.set_max_write_buffer_number(2)
    table = BlockBasedOptions()
    # A bloom filter per table file: a key absent from the store (every row of a store being
    # rebuilt asks for its old one first) is answered without reading each file's blocks.
    table.set_bloom_filter(10, False)
    options.set_block_based_table_factory(table)
    return options


class Writes:
    """Puts and deletes gathered into one RocksDB write, read through until it is made.

    A store being rebuilt keeps one open across many rows (`LIMIT` entries), where a write per
    row cost as much as the rest of taking the row; otherwise each row is one `Writes`. One
    made for a store that was empty (`from_empty`), and that every row goes through from then
    on, remembers (in a bloom filter) the keys it was given: a key it never saw is in no store
    and asks RocksDB for nothing, as a rebuilt store sees most keys once (the changelog is
    compacted); a key seen (or a false positive, ~3% a million keys) is read as before.
    """

    #: Entries a store being rebuilt gathers before it writes them.
    LIMIT = 4096
    #: The seen-keys filter: one probe of 25 bits of the key's hash into 4 MiB (a probe
    #: fewer than two into 2 MiB, for the same false positives at the keys a rebuild reads).
    _SEEN_MASK = (1 << 25) - 1

    def __init__(self, db: Rdict, *, from_empty: bool = False) -> None:
        self._db = db
        self._batch = WriteBatch()
        self._entries = 0
        #: What `get` answers from: the keys put with `read` (and deleted) not written yet.
        self._values: dict[str, bytes | None] = {}
        self._seen = bytearray((self._SEEN_MASK + 1) // 8) if from_empty else None

    def get(self, key: str) -> bytes | None:
        """The value of `key`: gathered, or stored (a key put with `read=False` is not read)."""
        if key in self._values:
            return self._values[key]
        if self._seen is not None:
            bit = hash(key) & self._SEEN_MASK
            if not self._seen[bit >> 3] >> (bit & 7) & 1:
                return None
        found = self._db.get(key)
        return None if found is None else bytes(found)

    def put(self, key: str, value: bytes, *, read: bool = True) -> None:
        """Put `value`; `read=False`: `get` never asks for this key (an index entry, iterated
        only after `write`), so neither what is gathered for it nor the filter of seen keys
        need have it."""
        self._batch.put(key, value)
        self._entries += 1
        if read:
            self._values[key] = value
            if self._seen is not None:
                bit = hash(key) & self._SEEN_MASK
                self._seen[bit >> 3] |= 1 << (bit & 7)

    def delete(self, key: str) -> None:
        self._batch.delete(key)
        self._entries += 1
        self._values[key] = None

    def full(self) -> bool:
        return self._entries >= self.LIMIT

    def write(self) -> None:
        """Make the gathered writes (in one RocksDB write) and start again empty."""
        if self._entries:
            self._db.write(self._batch)
            self._batch = WriteBatch()
            self._entries = 0
            self._values = {}
