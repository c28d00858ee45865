"""SRTP protect/unprotect in place on a preallocated buffer, for the RTP fast path.

aiortc keeps one ``pylibsrtp.Session`` per direction of a DTLS transport; its
``protect``/``unprotect`` allocate a length cell and copy twice per packet. This calls
libsrtp through pylibsrtp's own binding on the same ``srtp_t`` context (so the rollover
counters and replay windows stay shared with aiortc's RTCP and RTX traffic) with one buffer
reused for every packet. Single-threaded use only (the event loop), and a packet must be
consumed before the next call overwrites the buffer.
"""

from __future__ import annotations

from typing import Any

from pylibsrtp._binding import ffi, lib

from media.internals import srtp_context

MAX_PACKET = 1500
TRAILER = 16 + 128  # SRTP_MAX_TAG_LEN + SRTP_MAX_MKI_LEN, as pylibsrtp reserves
BUFFER_SIZE = MAX_PACKET + TRAILER


class SrtpBuffer:
    """One libsrtp context (an aiortc ``Session``) and a buffer to process packets in.

    ``buffer`` is writable (``struct.pack_into`` and slice assignment work on it); packets
    are built or unprotected at offset 0.
    """

    __slots__ = ("_ctx", "_length", "_session", "buffer", "cdata")

    def __init__(self, session: Any) -> None:
        self._session = session  # keeps the context alive
        self._ctx = srtp_context(session)
        self.cdata = ffi.new("unsigned char[]", BUFFER_SIZE)
        self.buffer: Any = ffi.buffer(self.cdata)
        self._length = ffi.new("int *")

    def unprotect(self, data: bytes) -> int:
        """Copy an SRTP packet in and decrypt it; the RTP length, or -1 if it is rejected."""
        size = len(data)
        if size > MAX_PACKET:
            return -1
        self.buffer[0:size] = data
        length = self._length
        length[0] = size
        if lib.srtp_unprotect(self._ctx, self.cdata, length) != 0:
            return -1
        return int(length[0])

    def protect(self, size: int) -> bytes | None:
        """Encrypt the ``size`` bytes of RTP at the start of the buffer; the SRTP packet."""
        length = self._length
        length[0] = size
        if lib.srtp_protect(self._ctx, self.cdata, length) != 0:
            return None
        result: bytes = self.buffer[0 : length[0]]
        return result
