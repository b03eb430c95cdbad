"""kafka-python checksums every record batch it sends and fetches; the C implementation must be the one in use."""
from __future__ import annotations

from kafka.record import util


def test_record_batch_checksums_use_the_c_implementation():
    # Pure-Python CRC32C takes about 7 ms per 30 KB trajectory state, inside the client's event loop.
    assert util.crc32c_c is not None, "install crc32c"
    assert util.calc_crc32c.__defaults__ == (util.crc32c_c,)
    state_sized = bytes(range(256)) * 120
    assert util.calc_crc32c(state_sized) == util.crc32c_py(state_sized)
