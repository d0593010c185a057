"""scripts/sam_local/attach_framing.py: podman 4.3's replayed log frames, made whole."""

from __future__ import annotations

from scripts.sam_local.attach_framing import FrameRepair


def frame(stream: int, payload: bytes, length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    return bytes((stream, 0, 0, 0)) + size.to_bytes(4, "big") + payload


# What podman 4.3.1 sent here for a container that had printed "line 1" and "line 2"
# before the attach (each header one byte short), then printed "line 3" after it.
PODMAN_4_3 = (
    frame(1, b"line 1\n", length=6) + frame(2, b"line 2\n", length=6) + frame(1, b"line 3\n")
)
WHOLE = frame(1, b"line 1\n") + frame(2, b"line 2\n") + frame(1, b"line 3\n")


def test_a_short_frame_gets_its_newline_back() -> None:
    assert FrameRepair().feed(PODMAN_4_3) == WHOLE


def test_correct_frames_pass_unchanged() -> None:
    assert FrameRepair().feed(WHOLE) == WHOLE


def test_any_split_of_the_stream_gives_the_same_lines() -> None:
    for size in range(1, len(PODMAN_4_3) + 1):
        repair = FrameRepair()
        out = b"".join(
            repair.feed(PODMAN_4_3[at : at + size]) for at in range(0, len(PODMAN_4_3), size)
        )
        assert lines(out) == [(1, b"line 1\n"), (2, b"line 2\n"), (1, b"line 3\n")], size


def lines(stream: bytes) -> list[tuple[int, bytes]]:
    """The frames, read as docker-py reads them (any desync fails), joined into lines."""
    found: list[tuple[int, bytes]] = []
    while stream:
        assert stream[0] in (0, 1, 2, 3) and stream[1:4] == b"\0\0\0", stream[:8]
        length = int.from_bytes(stream[4:8], "big")
        kind, payload, stream = stream[0], stream[8 : 8 + length], stream[8 + length :]
        if found and found[-1][0] == kind and not found[-1][1].endswith(b"\n"):
            found[-1] = (kind, found[-1][1] + payload)
        else:
            found.append((kind, payload))
    return found
