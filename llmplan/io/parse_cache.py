"""The presets' parse cache: start-up (parsing models.toml is most of a `--preset` lookup's time).

The command line hands it to llmplan.presets (PARSE_CACHE); the library alone parses every file.
"""

from __future__ import annotations

import os
from typing import Any

# A file's parsed TOML is kept as JSON named by the BLAKE2b hash of its bytes, so an edited file is a new
# entry and a stale one can never be read; json loads it ~100x faster than tomllib parses it.
# LLMPLAN_CACHE names the folder ("off" disables it); else $XDG_CACHE_HOME/llmplan or ~/.cache/llmplan.
# A cache that cannot be read or written is skipped silently: it only saves time.
_CACHE_FORMAT = "toml-v2"  # v2: named by BLAKE2b (v1: SHA-256)


def folder() -> str | None:
    """The cache folder, or None when LLMPLAN_CACHE turns it off (or no absolute home is known)."""
    setting = os.environ.get("LLMPLAN_CACHE")
    if setting is not None:
        return None if setting.strip().lower() in ("", "off", "0", "no") else setting
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "llmplan") if os.path.isabs(base) else None


def _digest(raw: bytes) -> str:
    """BLAKE2b-256 of the bytes. `import hashlib` loads OpenSSL (~4 ms, a tenth of a command's start-up);
    CPython's own _blake2 module is the same hash without it."""
    try:
        from _blake2 import blake2b
    except ImportError:  # another Python: the same hash through hashlib
        from hashlib import blake2b
    return blake2b(raw, digest_size=32).hexdigest()


def _path(raw: bytes) -> str | None:
    where = folder()
    if where is None:
        return None
    return os.path.join(where, f"{_CACHE_FORMAT}-{_digest(raw)}.json")


def get(raw: bytes) -> dict[str, Any] | None:
    import json

    path = _path(raw)
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def put(raw: bytes, data: dict[str, Any]) -> None:
    import json
    import tempfile

    path = _path(raw)
    if path is None:
        return
    try:
        text = json.dumps(data)  # TOML dates are not JSON: such a file is just not cached
        if json.loads(text) != data:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)  # whole or not at all
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except (OSError, TypeError, ValueError):
        pass
