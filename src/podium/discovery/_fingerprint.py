"""What a log is known by, from one pass over its content before it is read.

Its sha256 is of its content, decompressed, so a log and its gzipped copy (what rotation leaves) are one log. Its
length and the sha256 of its first 64 KiB find the earlier ingests it may continue: the live `access.log` read at
noon and again at midnight starts with all of what noon read. The same pass takes the digest of its first n bytes
for each such earlier ingest of n bytes; where that is the earlier content's digest, the lines it holds were read
then, and only the lines after them are read now.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from podium.discovery._evidence import Fingerprint, LogFile
from podium.discovery._formats import HEAD_BYTES, is_gzipped
from podium.errors import InputDataError

_CHUNK = 1 << 20


def head_digests(head: bytes, sizes: Iterable[int]) -> dict[int, str]:
    """The sha256 of `head`'s first n bytes, for each n = min(size, 64 KiB) of `sizes` that `head` is long enough
    for: the `head_sha256` an earlier ingest of that size has if this content may continue it."""
    digest, done, found = hashlib.sha256(), 0, {}
    for n in sorted({min(size, HEAD_BYTES) for size in sizes if size > 0}):
        if n > len(head):
            break
        digest.update(head[done:n])
        done, found[n] = n, digest.copy().hexdigest()
    return found


def may_continue(head: bytes, logs: Iterable[LogFile]) -> list[LogFile]:
    """Of `logs`, those whose first bytes are `head`'s (a log's first 64 KiB): the ones it may continue."""
    logs = [log for log in logs if log.size and log.head_sha256]
    keys = head_digests(head, [log.size for log in logs if log.size])
    return [log for log in logs if log.size and keys.get(min(log.size, HEAD_BYTES)) == log.head_sha256]


def fingerprint(path: Path, earlier: Sequence[LogFile] = ()) -> Fingerprint:
    """`path`'s fingerprint. Where its content starts with the whole content of some of `earlier` (ingested logs
    whose head matched) and goes on, it continues the longest: its lines are skipped."""
    offsets = sorted({log.size for log in earlier if log.size})
    content = _Pass()
    prefixes: dict[int, tuple[str, int]] = {}  # offset: the digest and the lines of the content before it
    for chunk in _chunks(path):
        rest = chunk
        while offsets and content.size + len(rest) >= offsets[0]:
            cut = offsets.pop(0) - content.size
            content.update(rest[:cut], count_lines=True)
            prefixes[content.size] = (content.digest.copy().hexdigest(), content.rows())
            rest = rest[cut:]
        content.update(rest, count_lines=bool(offsets))
    continued = [
        log.size
        for log in earlier
        if log.size and log.size < content.size and prefixes.get(log.size, ("", 0))[0] == log.sha256
    ]
    skip = prefixes[max(continued)][1] if continued else 0
    return Fingerprint(content.digest.hexdigest(), content.size, content.head.hexdigest(), skip_lines=skip)


def size_hint(path: Path) -> int:
    """About how many bytes of content `path` holds, without reading it (a gzip file's trailer says, modulo 4 GiB):
    fingerprinting a run's files shortest first lets a longer one continue a shorter one given with it."""
    stored = path.stat().st_size
    if stored < 4 or not is_gzipped(path):
        return stored
    with path.open("rb") as raw:
        raw.seek(-4, 2)
        return int.from_bytes(raw.read(4), "little")


class _Pass:
    """The running digests and size of a content, and its line ends while they are counted, as DuckDB's reader
    ends lines: at a newline, a carriage return, or both together."""

    def __init__(self) -> None:
        self.digest, self.head = hashlib.sha256(), hashlib.sha256()
        self.size = self.ends = 0
        self.last = b""

    def update(self, piece: bytes, *, count_lines: bool) -> None:
        if not piece:
            return
        if self.size < HEAD_BYTES:
            self.head.update(piece[: HEAD_BYTES - self.size])
        self.digest.update(piece)
        if count_lines:
            self.ends += piece.count(b"\n") + piece.count(b"\r") - piece.count(b"\r\n")
            self.ends -= self.last == b"\r" and piece.startswith(b"\n")
        self.size, self.last = self.size + len(piece), piece[-1:]

    def rows(self) -> int:
        """The lines of the content so far, as the reader counts them: a last line without its end is one (read
        then, so the rest of it is skipped with it, never counted a second time)."""
        return self.ends + (self.last not in (b"", b"\n", b"\r"))


def _chunks(path: Path) -> Iterator[bytes]:
    try:
        with gzip.open(path, "rb") if is_gzipped(path) else path.open("rb") as content:
            while chunk := content.read(_CHUNK):
                yield chunk
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise InputDataError(
            f"{path} starts like a gzip file but does not decompress to its end ({error}); check it with gzip -t"
        ) from error
    except OSError as error:
        raise InputDataError(f"cannot read {path}: {error.strerror}; check the path and its permissions") from error
