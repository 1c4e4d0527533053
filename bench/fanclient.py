"""The load process of the fan-out benchmark: subscribers, one publisher, all counted.

One asyncio process holds every connection of a run: the subscribers, the publisher and, in
``stalled``, the client that never reads. Each is a hand-written websocket client on an asyncio
``Protocol`` (handshake, frame parser, masking): the same few microseconds per frame for every
system, far below what any server spends on a delivery. It speaks plain websockets
(``--protocol ws``: ``/sub`` and ``/pub``) or Engine.IO v4 / Socket.IO over the websocket
transport (``--protocol eio``: ``/socket.io/?EIO=4&transport=websocket``, the open packet
``0{...}``, connect ``40``, events ``42[...]``, pings ``2`` answered ``3``), so that
python-socketio is driven by the same client as the others.

Every message the publisher sends is a JSON object ``{"t": SENT_NS, "seq": N, "pad": "..."}``;
``t`` is ``time.perf_counter_ns()`` when it was written (the subscribers are in this process:
one clock), so each delivery's latency is its arrival time minus ``t``. Before a run, the
publisher sends probes (``"seq": -1``) until every subscriber has had one: every system has
then joined every subscriber, whatever its own way of joining.

``fanout``
    ``--messages`` messages to ``--subscribers`` subscribers, in a closed loop: message ``k`` is
    sent once message ``k - window`` has reached every subscriber, so no system's buffers grow
    without bound and the rate is what the system sustains. The first ``--warm`` messages are
    not counted; the window (``MARK_START``/``MARK_END`` on stderr, for the server's CPU time)
    runs from the first counted message to the last delivery.
``stalled``
    ``--subscribers`` healthy subscribers and ``--stalled`` (0 or 1) clients that complete the
    handshake (and the join: they read until their first probe), shrink their receive buffer,
    and never read again. The publisher sends ``--rate`` messages per second for ``--seconds``.
    Reports what the healthy ones received, their latency, and whether and when the stalled one
    was closed (the TCP state of the server's end, polled; then what it had been sent: a close
    frame's code, or a reset).
``burst``
    ``--subscribers`` healthy subscribers; the publisher writes ``--messages`` messages as fast
    as TCP takes them. Reports the subscribers the server closed (evicted), what was delivered
    and how long it took until the last delivery.

    python -m bench.fanclient --mode fanout --url ws://127.0.0.1:PORT --subscribers 200
    python -m bench.fanclient --mode stalled --protocol eio --url ws://127.0.0.1:PORT \
        --subscribers 99 --stalled 1 --rate 500 --seconds 5

It prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import errno
import hashlib
import json
import os
import socket
import struct
import sys
import time
from array import array
from typing import Any

from bench import MARK_END, MARK_START, raise_fd_limit

#: Seconds for a handshake, and for each wait of a run that should not take long.
TIMEOUT = 10.0
#: Handshakes in flight at once while the subscribers connect.
OPEN_CONCURRENCY = 32
#: The stalled client's receive buffer (the kernel doubles it): its window closes at once.
STALLED_RCVBUF = 4096
#: How often the stalled client's TCP state is looked at, in seconds.
POLL = 0.02
#: Seconds the healthy subscribers get, after the last message was sent, to receive the rest.
SETTLE = 3.0
#: Seconds the publisher may wait for the server to read what it sent: longer, and the server
#: has stopped reading it (a hand-written loop stuck on the stalled client): it stops sending.
BLOCKED = 2.0
#: ESTABLISHED in ``/proc/net/tcp``.
TCP_ESTABLISHED = "01"
MAX_ERROR_SAMPLES = 5
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
clock = time.perf_counter_ns


#: ``sock_diag`` (``linux/sock_diag.h``, ``linux/inet_diag.h``).
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
LOOPBACK = socket.inet_aton("127.0.0.1") + bytes(12)


def tcp_state(local_port: int, remote_port: int) -> str | None:
    """The state of the TCP socket 127.0.0.1:``local_port`` to 127.0.0.1:``remote_port``.

    Two hex digits as ``/proc/net/tcp`` writes them (``01`` ESTABLISHED, ``04`` FIN_WAIT1), None
    if there is no such socket, ``?`` if the kernel cannot be asked (not Linux).
    """
    sockid = (
        struct.pack("!HH", local_port, remote_port)
        + LOOPBACK
        + LOOPBACK
        + struct.pack("=III", 0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
    )
    request = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as diag:
            diag.send(header + request)
            reply = diag.recv(65536)
    except (OSError, AttributeError):
        return "?"
    if struct.unpack_from("=H", reply, 4)[0] == NLMSG_ERROR:
        return None if struct.unpack_from("=i", reply, 16)[0] == -errno.ENOENT else "?"
    return f"{reply[17]:02X}"


class Run:
    """What every connection of the run shares (one event loop, no locks)."""

    def __init__(self, messages: int, warm: int, protocol: str) -> None:
        self.messages = messages
        self.warm = warm
        self.eio = protocol == "eio"
        #: Per message: how many subscribers have it.
        self.arrived = [0] * messages
        #: How many subscribers must have a message for it to be complete.
        self.members = 0
        #: Message the publisher waits for (to be complete), and its future.
        self.waiting: tuple[int, asyncio.Future[None]] | None = None
        self.latencies = array("q")
        self.measuring = False
        self.counted = 0  # deliveries while measuring
        self.delivered = 0  # every delivery (probes aside)
        self.probed = 0  # subscribers that have had a probe
        self.all_probed: asyncio.Future[None] | None = None
        self.last_arrival = 0
        self.completed = 0  # messages every member has
        self.all_complete: asyncio.Future[None] | None = None
        self.errors = 0
        self.error_samples: list[str] = []
        #: The worst latency of the messages sent in each bucket of time, if kept.
        self.timeline: dict[int, int] | None = None
        self.began = 0
        self.bucket_ns = 500_000_000

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(text)


def _mask(payload: bytes) -> tuple[bytes, bytes]:
    key = os.urandom(4)
    if not payload:
        return key, payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return key, masked.to_bytes(len(payload), "big")


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final, masked client frame."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    key, masked = _mask(payload)
    return header + key + masked


def parse_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete (unmasked, server) frames at the start of ``buf``, and what is left."""
    frames = []
    pos, size = 0, len(buf)
    while size - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        length, head = b1 & 0x7F, 2
        if length == 126:
            if size - pos < 4:
                break
            length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if size - pos < 10:
                break
            length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
        end = pos + head + length
        if end > size:
            break
        frames.append((b0, buf[pos + head : end]))
        pos = end
    return frames, buf[pos:]


def _handshake_request(port: int, path: str) -> tuple[bytes, bytes]:
    key = base64.b64encode(os.urandom(16))
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    return request, base64.b64encode(hashlib.sha1(key + GUID).digest())


def _check_response(head: bytes, accept: bytes) -> str | None:
    """Why the handshake response ``head`` is not a websocket accept, or ``None``."""
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status + b" ":
        return f"refused: {status.decode('latin-1')}"
    if accept not in head:
        return "wrong Sec-WebSocket-Accept"
    return None


def _stamp(payload: bytes) -> tuple[int, int]:
    """``(t, seq)`` of a message (a JSON object, or a Socket.IO event that carries it)."""
    i = payload.find(b'"t":') + 4
    j = payload.find(b",", i)
    k = payload.find(b'"seq":', j) + 6
    m = payload.find(b",", k)
    return int(payload[i:j]), int(payload[k:m])


class Connection(asyncio.Protocol):
    """A websocket client: handshake, then frames; a subscriber unless it is the publisher."""

    def __init__(self, run: Run, port: int, path: str, subscriber: bool) -> None:
        self.run = run
        self.subscriber = subscriber
        self.request, self.accept = _handshake_request(port, path)
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        #: Set when the connection is ready: accepted, and (Engine.IO) connected to "/".
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.got = bytearray(run.messages)
        self.received = 0
        self.probed = False
        self.closed_code: int | None = None
        self.lost = False
        self.lost_at = 0
        self.writable: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = clock()
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            why = _check_response(buf[:end], self.accept)
            if why is not None:
                self._fail(why)
                return
            self.upgraded = True
            buf = buf[end + 4 :]
            if not self.run.eio:
                self._ready()
        frames, self.buf = parse_frames(buf)
        for b0, payload in frames:
            opcode = b0 & 0x0F
            if opcode == 0x1:
                if self.run.eio:
                    self._engine_io(payload, now)
                else:
                    self._message(payload, now)
            elif opcode == 0x8:
                self.closed_code = int.from_bytes(payload[:2], "big") if payload else 1005
                self._send(payload[:2], 0x8)
                if self.transport is not None:
                    self.transport.close()
            elif opcode == 0x9:
                self._send(payload, 0xA)
            elif opcode != 0xA:
                self.run.error(f"unexpected frame: opcode {opcode}, fin {b0 >> 7}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost, self.lost_at = True, clock()
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"lost before ready: {exc}"))
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    # -- frames ----------------------------------------------------------------------------

    def _engine_io(self, payload: bytes, now: int) -> None:
        kind = payload[:1]
        if kind == b"4":
            if payload[1:2] == b"2":
                self._message(payload, now)
            elif payload[1:2] == b"0":
                self._ready()
            else:
                self.run.error(f"unexpected Socket.IO packet: {payload[:40]!r}")
        elif kind == b"2":
            self._send(b"3")  # pong
        elif kind == b"0":
            self._send(b"40")  # the open packet: connect to the "/" namespace
        elif kind != b"6":
            self.run.error(f"unexpected Engine.IO packet: {payload[:40]!r}")

    def _message(self, payload: bytes, now: int) -> None:
        if not self.subscriber:
            return
        try:
            sent, seq = _stamp(payload)
        except ValueError:
            self.run.error(f"not a benchmark message: {payload[:40]!r}")
            return
        run = self.run
        if seq < 0:
            if not self.probed:
                self.probed = True
                run.probed += 1
                if run.probed >= run.members and run.all_probed and not run.all_probed.done():
                    run.all_probed.set_result(None)
            return
        if self.got[seq]:
            run.error(f"message {seq} twice")
            return
        self.got[seq] = 1
        self.received += 1
        run.delivered += 1
        run.last_arrival = now
        if seq >= run.warm:
            run.latencies.append(now - sent)
            if run.timeline is not None:
                bucket = (sent - run.began) // run.bucket_ns
                if now - sent > run.timeline.get(bucket, 0):
                    run.timeline[bucket] = now - sent
            if run.measuring:
                run.counted += 1
        arrived = run.arrived[seq] + 1
        run.arrived[seq] = arrived
        if arrived == run.members:
            run.completed += 1
            waiting = run.waiting
            if waiting is not None and waiting[0] == seq and not waiting[1].done():
                waiting[1].set_result(None)
            if run.completed == run.messages and run.all_complete and not run.all_complete.done():
                run.all_complete.set_result(None)

    def _ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        if self.transport is not None:
            self.transport.abort()

    def _send(self, payload: bytes, opcode: int = 0x1) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(payload, opcode))

    # -- publishing ------------------------------------------------------------------------

    def publish(self, body: bytes) -> None:
        self._send(b'42["pub",' + body + b"]" if self.run.eio else body)

    async def drain(self) -> bool:
        """Wait until the server has read enough of what was sent; ``False``: it stopped."""
        if self.writable is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.writable), BLOCKED)
            except asyncio.TimeoutError:
                return False
        return True


def message(seq: int, pad: bytes) -> bytes:
    return b'{"t":%d,"seq":%d,"pad":"%s"}' % (clock(), seq, pad)


async def open_connection(
    run: Run, port: int, path: str, subscriber: bool = True
) -> Connection | None:
    loop = asyncio.get_running_loop()
    try:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: Connection(run, port, path, subscriber), "127.0.0.1", port
            ),
            TIMEOUT,
        )
        await asyncio.wait_for(protocol.ready, TIMEOUT)
    except (OSError, asyncio.TimeoutError) as exc:
        run.error(f"connect failed: {type(exc).__name__}: {exc}")
        return None
    return protocol


class Stalled:
    """A client that joins, then never reads: a raw socket with a tiny receive buffer."""

    def __init__(self, run: Run, port: int, path: str) -> None:
        self.run, self.port, self.path = run, port, path
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
        self.sock.setblocking(False)
        self.closed_at: int | None = None
        self.state_when_closed: str | None = None

    async def join(self) -> None:
        """Connect, handshake and read until the first probe; then it stops reading."""
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(self.sock, ("127.0.0.1", self.port)), TIMEOUT)
        request, accept = _handshake_request(self.port, self.path)
        await loop.sock_sendall(self.sock, request)
        buf, upgraded = b"", False
        while True:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), TIMEOUT)
            if not data:
                raise ConnectionError("the stalled client was closed while joining")
            buf += data
            if not upgraded:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                why = _check_response(buf[:end], accept)
                if why is not None:
                    raise ConnectionError(why)
                upgraded, buf = True, buf[end + 4 :]
            frames, buf = parse_frames(buf)
            for _, payload in frames:
                if self.run.eio and payload[:1] == b"0":
                    await loop.sock_sendall(self.sock, client_frame(b"40"))
                elif b'"seq":-1,' in payload:
                    return  # a member: from now on it reads nothing

    def server_state(self) -> str | None:
        """The TCP state of the server's end of this connection, as a ``/proc/net/tcp`` code.

        The client's own end cannot tell: once its window is closed, not even the server's FIN
        gets through. The server's end leaves ESTABLISHED (``01``) as soon as the server closes
        it (FIN_WAIT1, ``04``: its close waits behind the unread data), or disappears (reset:
        None). Asked of the kernel by ``sock_diag`` for exactly this socket (about 15 µs);
        reading ``/proc/net/tcp`` instead takes about 7 ms on this machine, however few sockets
        it lists, and at every poll blocked this process's event loop, the one the healthy
        subscribers' latencies are measured in.
        """
        return tcp_state(self.port, self.sock.getsockname()[1])

    async def watch(self) -> None:
        """Note when the server's end of the connection stops being ESTABLISHED."""
        while True:
            state = self.server_state()
            if state != TCP_ESTABLISHED:
                self.closed_at, self.state_when_closed = clock(), state
                return
            await asyncio.sleep(POLL)

    async def ending(self) -> dict[str, Any]:
        """Read what it was sent: how it ended (a close frame's code, a reset, or still open)."""
        loop = asyncio.get_running_loop()
        buf, frames_seen, code, how = b"", 0, None, "still open"
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(2.0):
                while True:
                    try:
                        data = await loop.sock_recv(self.sock, 1 << 20)
                    except ConnectionResetError:
                        how = "reset"
                        break
                    if not data:
                        how = "closed (FIN)" if code is None else how
                        break
                    frames, buf = parse_frames(buf + data)
                    frames_seen += len(frames)
                    for b0, payload in frames:
                        if b0 & 0x0F == 0x8:
                            code = int.from_bytes(payload[:2], "big") if payload else 1005
                            how = f"close frame {code}"
        self.sock.close()
        return {"how": how, "close_code": code, "frames_read_after": frames_seen}


async def connect_all(run: Run, port: int, path: str, count: int) -> list[Connection]:
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> Connection | None:
        async with gate:
            return await open_connection(run, port, path)

    opened = await asyncio.gather(*(one() for _ in range(count)))
    return [c for c in opened if c is not None]


async def probe(run: Run, publisher: Connection) -> None:
    """Send probes until every subscriber has had one (every system has joined them all)."""
    run.all_probed = asyncio.get_running_loop().create_future()
    pad = b"probe"
    deadline = time.monotonic() + TIMEOUT
    while not run.all_probed.done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {run.probed} of {run.members} subscribers joined")
        publisher.publish(message(-1, pad))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(run.all_probed), 0.05)
    await asyncio.sleep(0.1)  # the last probes arrive


def _percentile(ordered: list[int], fraction: float) -> float | None:
    if not ordered:
        return None
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank] / 1000


def _latency(run: Run) -> dict[str, Any]:
    ordered = sorted(run.latencies)
    return {
        "p50_us": _percentile(ordered, 0.50),
        "p99_us": _percentile(ordered, 0.99),
        "max_us": ordered[-1] / 1000 if ordered else None,
    }


def _paths(protocol: str) -> tuple[str, str]:
    if protocol == "eio":
        base = "/socket.io/?EIO=4&transport=websocket"
        return base, base + "&role=pub"
    return "/sub", "/pub"


def _mark(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _setup(
    run: Run, port: int, protocol: str, subscribers: int
) -> tuple[list[Connection], Connection]:
    sub_path, pub_path = _paths(protocol)
    subs = await connect_all(run, port, sub_path, subscribers)
    run.members = len(subs)
    publisher = await open_connection(run, port, pub_path, subscriber=False)
    if publisher is None or not subs:
        raise ConnectionError(f"could not connect: {run.error_samples}")
    await probe(run, publisher)
    return subs, publisher


async def _close(connections: list[Connection]) -> None:
    for c in connections:
        if c.transport is not None and not c.transport.is_closing():
            c._send(struct.pack("!H", 1000), 0x8)
            c.transport.close()
    await asyncio.sleep(0.05)


async def fanout(
    port: int, protocol: str, subscribers: int, messages: int, warm: int, window: int, pad: bytes
) -> dict[str, Any]:
    run = Run(messages, warm, protocol)
    loop = asyncio.get_running_loop()
    subs, publisher = await _setup(run, port, protocol, subscribers)
    run.all_complete = loop.create_future()
    start = end = cpu = 0.0
    try:
        for seq in range(messages):
            if seq >= window:
                awaited = seq - window
                if run.arrived[awaited] < run.members:
                    future = loop.create_future()
                    run.waiting = (awaited, future)
                    await asyncio.wait_for(future, TIMEOUT)
            if seq == warm:
                _mark(MARK_START)
                start, cpu = time.perf_counter(), time.process_time()
                run.measuring = True
            publisher.publish(message(seq, pad))
        await asyncio.wait_for(run.all_complete, TIMEOUT)
    except asyncio.TimeoutError:
        run.error(
            f"stuck: {run.completed} of {messages} messages reached all {run.members} "
            f"subscribers; {sum(c.lost for c in subs)} subscribers were closed"
        )
    end = time.perf_counter()
    run.measuring = False
    _mark(MARK_END)
    client_cpu = (time.process_time() - cpu) / (end - start) if start else None
    closed = sum(c.lost for c in subs)
    await _close([*subs, publisher])
    seconds = end - start if start else 0.0
    return {
        "mode": "fanout",
        "protocol": protocol,
        "subscribers": subscribers,
        "connected": run.members,
        "messages": messages,
        "warm": warm,
        "window": window,
        "message_bytes": len(message(0, pad)),
        "count": run.counted,
        "seconds": round(seconds, 4),
        "per_s": run.counted / seconds if seconds else 0.0,
        "delivered": run.delivered,
        "expected": messages * run.members,
        "closed": closed,
        **_latency(run),
        "client_cpu": round(client_cpu, 3) if client_cpu is not None else None,
        "errors": run.errors,
        "error_samples": run.error_samples,
    }


async def _settle(run: Run, seconds: float) -> None:
    assert run.all_complete is not None
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(run.all_complete), seconds)


async def stalled(
    port: int,
    protocol: str,
    subscribers: int,
    stalled_count: int,
    rate: float,
    seconds: float,
    pad: bytes,
) -> dict[str, Any]:
    messages = max(1, round(rate * seconds))
    run = Run(messages, 0, protocol)
    loop = asyncio.get_running_loop()
    sub_path, pub_path = _paths(protocol)
    stuck = [Stalled(run, port, sub_path) for _ in range(stalled_count)]
    subs = await connect_all(run, port, sub_path, subscribers)
    run.members = len(subs)
    publisher = await open_connection(run, port, pub_path, subscriber=False)
    if publisher is None or not subs:
        raise ConnectionError(f"could not connect: {run.error_samples}")
    run.all_probed = loop.create_future()
    # The stalled one joins first (it reads until a probe), then every healthy one has a probe.
    joining = [asyncio.ensure_future(s.join()) for s in stuck]
    deadline = time.monotonic() + TIMEOUT
    while not (all(j.done() for j in joining) and run.all_probed.done()):
        if time.monotonic() > deadline:
            raise TimeoutError("the subscribers did not all join")
        publisher.publish(message(-1, b"probe"))
        await asyncio.sleep(0.05)
    for j in joining:
        j.result()
    await asyncio.sleep(0.1)
    watchers = [asyncio.ensure_future(s.watch()) for s in stuck]
    run.all_complete = loop.create_future()
    _mark(MARK_START)
    start, cpu = time.perf_counter(), time.process_time()
    began = run.began = clock()
    run.timeline = {}
    run.measuring = True
    interval_ns = 1e9 / rate
    seq = 0
    blocked: int | None = None
    while seq < messages:
        due = min(messages, int((clock() - began) / interval_ns) + 1)
        while seq < due:
            publisher.publish(message(seq, pad))
            seq += 1
        if not await publisher.drain():
            blocked = seq
            break
        await asyncio.sleep(max(0.0, (began + seq * interval_ns - clock()) / 1e9))
    sent_s = (clock() - began) / 1e9
    await _settle(run, SETTLE)
    end = time.perf_counter()
    run.measuring = False
    _mark(MARK_END)
    client_cpu = (time.process_time() - cpu) / (end - start)
    for w in watchers:
        w.cancel()
    healthy_closed = sum(c.lost for c in subs)
    endings = [await s.ending() for s in stuck]
    await _close([*subs, publisher])
    received = [c.received for c in subs]
    return {
        "mode": "stalled",
        "protocol": protocol,
        "subscribers": subscribers,
        "connected": run.members,
        "stalled": stalled_count,
        "rate": rate,
        "messages": messages,
        "message_bytes": len(message(0, pad)),
        "sent_s": round(sent_s, 3),
        "publisher_blocked_after": blocked,
        "count": run.counted,
        "seconds": round(end - start, 4),
        "expected": messages * run.members,
        "delivered": run.delivered,
        "delivered_pct": 100.0 * run.delivered / (messages * run.members) if run.members else 0,
        "healthy_min_received": min(received),
        "healthy_closed": healthy_closed,
        "stalled_closed_after_s": [
            None if s.closed_at is None else round((s.closed_at - began) / 1e9, 3) for s in stuck
        ],
        "stalled_tcp_state": [s.state_when_closed for s in stuck],
        "stalled_ending": endings,
        **_latency(run),
        "worst_ms_by_half_second": _timeline(run),
        "client_cpu": round(client_cpu, 3),
        "errors": run.errors,
        "error_samples": run.error_samples,
    }


def _timeline(run: Run) -> list[float]:
    """The worst latency (ms) of the messages sent in each half second of the run."""
    kept = run.timeline or {}
    return [round(kept.get(b, 0) / 1e6, 1) for b in range(max(kept, default=-1) + 1)]


async def burst(
    port: int, protocol: str, subscribers: int, messages: int, pad: bytes
) -> dict[str, Any]:
    run = Run(messages, 0, protocol)
    loop = asyncio.get_running_loop()
    subs, publisher = await _setup(run, port, protocol, subscribers)
    run.all_complete = loop.create_future()
    _mark(MARK_START)
    start, cpu = time.perf_counter(), time.process_time()
    began = clock()
    run.measuring = True
    blocked: int | None = None
    for seq in range(messages):
        publisher.publish(message(seq, pad))
        if not await publisher.drain():
            blocked = seq + 1
            break
    sent_s = (clock() - began) / 1e9
    # Until every message reached every subscriber, or nothing arrives for SETTLE seconds.
    while not run.all_complete.done():
        before = run.delivered
        await _settle(run, SETTLE)
        if run.delivered == before:
            break
    end = time.perf_counter()
    run.measuring = False
    _mark(MARK_END)
    client_cpu = (time.process_time() - cpu) / (end - start)
    evicted = [c for c in subs if c.lost and c.received < messages]
    last = (run.last_arrival - began) / 1e9 if run.last_arrival else None
    await _close([*subs, publisher])
    codes = sorted({c.closed_code or 1006 for c in evicted})
    return {
        "mode": "burst",
        "protocol": protocol,
        "subscribers": subscribers,
        "connected": run.members,
        "messages": messages,
        "message_bytes": len(message(0, pad)),
        "sent_s": round(sent_s, 3),
        "publisher_blocked_after": blocked,
        "count": run.counted,
        "seconds": round(end - start, 4),
        "all_delivered_s": round(last, 3) if last and run.all_complete.done() else None,
        "per_s": run.delivered / last if last else 0.0,
        "expected": messages * run.members,
        "delivered": run.delivered,
        "delivered_pct": 100.0 * run.delivered / (messages * run.members) if run.members else 0,
        "evicted": len(evicted),
        "evicted_codes": codes,
        "evicted_received": sorted(c.received for c in evicted)[:5],
        **_latency(run),
        "client_cpu": round(client_cpu, 3),
        "errors": run.errors,
        "error_samples": run.error_samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("fanout", "stalled", "burst"), default="fanout")
    parser.add_argument("--protocol", choices=("ws", "eio"), default="ws")
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--warm", type=int, default=200, help="fanout: messages not counted")
    parser.add_argument("--window", type=int, default=32, help="fanout: messages in flight")
    parser.add_argument("--stalled", type=int, default=1, choices=(0, 1))
    parser.add_argument("--rate", type=float, default=500.0, help="stalled: messages/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="stalled: seconds")
    parser.add_argument("--pad", type=int, default=150, help="characters of padding")
    args = parser.parse_args(argv)
    if not args.url.startswith("ws://127.0.0.1:"):
        parser.error("--url must be ws://127.0.0.1:PORT: the benchmark stays on this host")
    port = int(args.url.removeprefix("ws://127.0.0.1:").split("/")[0])
    if not 1 <= args.subscribers <= 2000 or not 1 <= args.messages <= 1_000_000:
        parser.error("need 1 <= --subscribers <= 2000 and 1 <= --messages <= 1000000")
    if args.mode == "fanout" and (not 0 <= args.warm < args.messages or args.window < 1):
        parser.error("need 0 <= --warm < --messages and --window >= 1")
    raise_fd_limit(args.subscribers + 256)
    pad = b"x" * args.pad
    if args.mode == "fanout":
        work = fanout(
            port, args.protocol, args.subscribers, args.messages, args.warm, args.window, pad
        )
    elif args.mode == "stalled":
        work = stalled(
            port, args.protocol, args.subscribers, args.stalled, args.rate, args.seconds, pad
        )
    else:
        work = burst(port, args.protocol, args.subscribers, args.messages, pad)
    try:
        result = asyncio.run(work)
    except (OSError, TimeoutError) as exc:
        result = {"mode": args.mode, "failed": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)
    return 0 if "failed" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
