"""Byte-level RTP on one DTLS transport: the SFU's fast path around aiortc's object path.

For :mod:`media.publication` (receive) and :mod:`media.forwarder` (send). aiortc keeps ICE,
DTLS, RTCP and negotiation; an :class:`RtpSocket` takes media RTP off its object path:

* **receive**: ``datagram_received`` of the transport's ICE sockets is hooked; an SRTP
  packet whose SSRC was routed here (a publisher's media SSRC, learnt from its first packet
  on aiortc's path) is decrypted in place and handed over as bytes. STUN (consent), DTLS,
  all RTCP, RTX and unknown SSRCs go on to aioice and aiortc unchanged;
* **send**: a forwarder composes plain RTP in :attr:`RtpSocket.buffer`, then
  :meth:`RtpSocket.send` encrypts it in place and sends it on the nominated ICE pair (read
  again on every packet: a new nomination is followed, an expired consent stops sending).

There is one socket per DTLS transport (:func:`rtp_socket`); it removes its hooks when the
transport leaves the ``connected`` state.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import weakref
from collections.abc import Callable
from typing import Any

from aioice.ice import StunProtocol
from aiortc.rtcdtlstransport import RTCDtlsTransport

from media.internals import (
    dtls_internals,
    dtls_is_connected,
    install_datagram_hook,
    raw_udp_socket,
    remove_datagram_hook,
)
from media.srtp import SrtpBuffer

logger = logging.getLogger(__name__)

RtpHandler = Callable[[Any, Any, int], None]
"""Called with (buffer, cdata, length) of a decrypted RTP packet (valid during the call)."""

_unpack_ssrc = struct.Struct("!I").unpack_from
_sockets: weakref.WeakKeyDictionary[RTCDtlsTransport, RtpSocket] = weakref.WeakKeyDictionary()


def rtp_socket(dtls: RTCDtlsTransport | None) -> RtpSocket | None:
    """The fast-path socket of a connected DTLS transport (None if it is not connected)."""
    if dtls is None:
        return None
    socket = _sockets.get(dtls)
    if socket is not None and not socket.closed:
        return socket
    if not dtls_is_connected(dtls):
        return None
    internals = dtls_internals(dtls)
    if internals is None:
        return None
    socket = _sockets[dtls] = RtpSocket(dtls, internals)
    return socket


class RtpSocket:
    """Fast RTP receive routing and encrypted sending for one DTLS transport."""

    def __init__(self, dtls: RTCDtlsTransport, internals: Any) -> None:
        self.dtls = dtls
        self.closed = False
        self.packets_received = 0
        self.packets_sent = 0
        self.send_errors = 0
        self.extension_ids = internals.extension_ids
        self._rx = SrtpBuffer(internals.rx_srtp)
        self._tx = SrtpBuffer(internals.tx_srtp)
        self.buffer: Any = self._tx.buffer
        """Where a sender composes a plain RTP packet (from offset 0) before :meth:`send`."""
        self._nominated: dict[int, Any] = internals.nominated
        self._pair: Any = None
        self._sendto: Callable[[bytes, Any], None] | None = None
        self._sock: Any = None
        self._addr: Any = None
        self._routes: dict[int, RtpHandler] = {}
        self._protocols = list(internals.protocols)
        self._tasks: set[asyncio.Task[None]] = set()
        for protocol in self._protocols:
            install_datagram_hook(protocol, self._hook(protocol.datagram_received))
        dtls.on("statechange", self._state_changed)

    def route(self, ssrc: int, handler: RtpHandler) -> None:
        """Deliver RTP of ``ssrc`` (decrypted, as bytes) to ``handler`` from now on."""
        if not self.closed:
            self._routes[ssrc] = handler

    def unroute(self, handler: RtpHandler) -> None:
        for ssrc in [s for s, h in self._routes.items() if h == handler]:
            del self._routes[ssrc]

    def routed(self, ssrc: int) -> bool:
        return ssrc in self._routes

    def send(self, size: int) -> bool:
        """Encrypt the plain RTP packet of ``size`` bytes in :attr:`buffer` and send it."""
        pair = self._nominated.get(1)
        if pair is not self._pair:
            self._select(pair)
        sendto = self._sendto
        if sendto is None or self.closed:
            return False
        data = self._tx.protect(size)
        if data is None:
            self.send_errors += 1
            return False
        sock = self._sock
        if sock is None:
            sendto(data, self._addr)
        else:
            try:
                sock.sendto(data, self._addr)
            except (BlockingIOError, InterruptedError):
                sendto(data, self._addr)  # the transport queues it until writable
            except OSError:
                self.send_errors += 1
                return False
        self.packets_sent += 1
        return True

    def close(self) -> None:
        """Remove the hooks; packets take aiortc's path again (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for protocol in self._protocols:
            remove_datagram_hook(protocol)
        self._routes.clear()
        self._sendto = None
        self.dtls.remove_listener("statechange", self._state_changed)
        if _sockets.get(self.dtls) is self:
            del _sockets[self.dtls]

    # -- internals ---------------------------------------------------------------------

    def _state_changed(self) -> None:
        if not dtls_is_connected(self.dtls):
            self.close()

    def _select(self, pair: Any) -> None:
        """Follow the nominated pair (None: not connected any more, nothing is sent)."""
        self._pair = pair
        self._sock = None
        if pair is None:
            self._sendto = None
            return
        protocol = pair.protocol
        self._addr = pair.remote_addr
        if isinstance(protocol, StunProtocol):
            self._sendto = protocol.transport.sendto
            self._sock = raw_udp_socket(protocol.transport)
        else:  # a TURN relay: aioice wraps the data itself
            self._sendto = self._relay(protocol)
        logger.debug("fast path sends on %s", pair)

    def _relay(self, protocol: Any) -> Callable[[bytes, Any], None]:
        def sendto(data: bytes, addr: Any) -> None:
            task = asyncio.ensure_future(protocol.send_data(data, addr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return sendto

    def _hook(self, original: Callable[[bytes, Any], None]) -> Callable[[bytes, Any], None]:
        routes = self._routes
        rx = self._rx
        buffer, cdata = rx.buffer, rx.cdata

        def datagram_received(data: bytes, addr: Any) -> None:
            # SRTP (first byte 128..191), not RTCP (second byte 192..208, as aiortc tests).
            if len(data) > 12 and 127 < data[0] < 192 and not 191 < data[1] < 209:
                handler = routes.get(_unpack_ssrc(data, 8)[0])
                if handler is not None:
                    size = rx.unprotect(data)
                    if size > 0:
                        self.packets_received += 1
                        try:
                            handler(buffer, cdata, size)
                        except Exception:
                            logger.exception("RTP fast path handler failed")
                    return
            original(data, addr)

        return datagram_received
