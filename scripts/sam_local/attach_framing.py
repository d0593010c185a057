"""A pass-through for podman 4.3's Docker-compatible socket that repairs one framing bug.

``POST /containers/{id}/attach?logs=1`` first replays what the container already printed,
then streams what it prints next. Podman before 4.4 (Debian 12 ships 4.3.1) gives each
replayed line a frame header one byte short: the header counts the line, the payload
carries the line *and* its newline (containers/podman#16856, fixed by #16858). The stray
newline then reads as the next frame's header, docker-py raises "10 is not a valid
stream", and SAM CLI silently stops showing the function's output for the rest of the
container's life. Whether any line is replayed depends on a race between SAM's log thread
and its invoke request, so the loss comes and goes (about one ``sam local invoke`` in
eight here).

This listens on a Unix socket, forwards each connection to podman's, and in an attach
response gives a newline that follows a frame to that frame. Everything else passes
byte for byte. Each request is sent with ``Connection: close``, so one connection carries
one request and no HTTP parsing is needed beyond the request's head.

    python3 attach_framing.py LISTEN_SOCKET PODMAN_SOCKET
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import threading

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 65_536
_ATTACH = re.compile(rb"^POST /(?:v[\d.]+/)?containers/[^/?\s]+/attach\?\S*\blogs=(?:1|true)\b")
_CONNECTION = re.compile(rb"\r\nconnection:[^\r]*", re.IGNORECASE)
_NEWLINE = 0x0A


class FrameRepair:
    """Docker's multiplexed stream (8-byte header: stream, 0, 0, 0, big-endian length),
    with a newline after a frame's payload moved into that frame."""

    def __init__(self) -> None:
        self._pending = b""
        self._stream = 1

    def feed(self, data: bytes) -> bytes:
        buffer = self._pending + data
        out = bytearray()
        while buffer:
            if buffer[0] == _NEWLINE:  # the newline of the frame before, in a later read
                out += _frame(self._stream, b"\n")
                buffer = buffer[1:]
                continue
            if len(buffer) < 8:
                break
            length = int.from_bytes(buffer[4:8], "big")
            if len(buffer) < 8 + length:
                break
            self._stream = buffer[0]
            payload = buffer[8 : 8 + length]
            buffer = buffer[8 + length :]
            if buffer[:1] == b"\n":
                payload, buffer = payload + b"\n", buffer[1:]
            out += _frame(self._stream, payload)
        self._pending = bytes(buffer)
        return bytes(out)


def _frame(stream: int, payload: bytes) -> bytes:
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def _read_head(client: socket.socket) -> bytes:
    data = b""
    while _HEAD_END not in data and len(data) < _MAX_HEAD:
        chunk = client.recv(65_536)
        if not chunk:
            break
        data += chunk
    return data


def _one_request_per_connection(head: bytes) -> bytes:
    """The request head with ``Connection: close`` (an attach keeps its Upgrade)."""
    end = head.find(_HEAD_END)
    if end < 0:
        return head
    headers = _CONNECTION.sub(b"", head[:end])
    return headers + b"\r\nConnection: close" + head[end:]


def _pump(source: socket.socket, target: socket.socket, repair: bool) -> None:
    framing: FrameRepair | None = None
    response_head = b""
    try:
        while chunk := source.recv(65_536):
            if repair and framing is None:
                response_head += chunk
                end = response_head.find(_HEAD_END)
                if end < 0:
                    continue
                status = response_head.split(b" ", 2)[1:2]
                framing = FrameRepair() if status in ([b"101"], [b"200"]) else None
                repair = framing is not None
                chunk = response_head[end + 4 :]
                target.sendall(response_head[: end + 4])
            if framing is not None:
                chunk = framing.feed(chunk)
            if chunk:
                target.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _serve(client: socket.socket, upstream_path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(upstream_path)
        head = _read_head(client)
        attach = bool(_ATTACH.match(head))
        upstream.sendall(head if attach else _one_request_per_connection(head))
        back = threading.Thread(target=_pump, args=(upstream, client, attach), daemon=True)
        back.start()
        _pump(client, upstream, False)
        back.join()
    except OSError:
        pass
    finally:
        client.close()
        upstream.close()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} LISTEN_SOCKET PODMAN_SOCKET", file=sys.stderr)
        return 2
    listen_path, upstream_path = argv[1], argv[2]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(listen_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listen_path)
    server.listen(64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=_serve, args=(client, upstream_path), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
