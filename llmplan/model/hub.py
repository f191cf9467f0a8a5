"""A model by its Hugging Face Hub id, `ORG/NAME[@REVISION]`: its config.json and its safetensors
headers, never its weights.

Everything goes through `huggingface_hub` (the optional `hub` extra), so the Hub's own rules hold:
its cache (HF_HOME, HF_HUB_CACHE), offline mode from that cache (HF_HUB_OFFLINE=1), another
endpoint (HF_ENDPOINT) and a token for gated or private models (HF_TOKEN, or `hf auth login`).

- config.json: `hf_hub_download`, into the Hub cache (snapshots/<commit>/config.json); offline, the
  cached snapshot of the revision. Online, its size is asked first (`get_hf_file_metadata`, one HEAD)
  and a config over MAX_CONFIG_BYTES is refused before it is downloaded.
- safetensors: `model.safetensors.index.json` by `hf_hub_download` (small, cached), else the single
  `model.safetensors`; of each shard only the header is read, by HTTP range requests (the first
  FIRST_READ bytes, then the rest of the header if it is longer: what huggingface_hub's own
  `parse_safetensors_file_metadata` does), and parsed by llmplan.model.safetensors, the code that
  reads local checkpoints. The raw headers of a commit are kept in the Hub's assets cache
  (`cached_assets_path("llmplan", ORG--NAME, "safetensors-headers")/<commit>.json`), so a model
  read once online is read offline as well. A cached config without cached headers, offline, gives
  the config's count with a note.

Every failure is one InputError line: gated (accept the licence, set HF_TOKEN), no such repo or
revision, no network and not cached, offline and not cached, a file too large, and the package
missing ("pip install 'llmplan[hub]'").
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import tempfile
from typing import TYPE_CHECKING, Any, Iterator

from llmplan.errors import InputError
from llmplan.records import record

if TYPE_CHECKING:  # pragma: no cover
    from llmplan.model.safetensors import Checkpoint

INSTALL = "pip install 'llmplan[hub]'"
# A Hub repo id: NAME or ORG/NAME, letters, digits, '-', '_', '.' (huggingface_hub validate_repo_id).
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")
# The first bytes asked of each shard: huggingface_hub's parse_safetensors_file_metadata asks 100 kB
# ("97% of safetensors files have a metadata size < 100kb"); a longer header costs a second request.
FIRST_READ = 100_001
# A config.json is a few kB; anything over this is not one.
MAX_CONFIG_BYTES = 16 * 1024 * 1024
SINGLE_NAME = "model.safetensors"
CACHE_VERSION = 1


@record
class Found:
    """What the Hub gave for one model id."""

    name: str  # the id as given: ORG/NAME or ORG/NAME@REVISION
    repo: str
    revision: str | None
    commit: str  # the commit the revision resolved to (the snapshot folder's name)
    config: str  # the cached config.json
    checkpoint: "Checkpoint | None"  # None: the repo stores no safetensors, or offline without cached headers
    notes: tuple[str, ...] = ()


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'ORG/NAME@REVISION' -> ('ORG/NAME', 'REVISION'); InputError for anything else."""
    text = str(spec).strip()
    repo, _, revision = text.partition("@")
    if text.startswith(("http://", "https://")) or not _REPO_ID.fullmatch(repo) or ".." in repo or (_ and not revision.strip()):
        raise InputError(f"--hf {spec!r} is not a Hub model id; give ORG/NAME or ORG/NAME@REVISION, e.g. meta-llama/Llama-3.1-8B")
    return repo, (revision.strip() or None)


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise InputError(f"--hf needs the huggingface_hub package: {INSTALL}") from None
    return huggingface_hub


def _constants() -> Any:
    from huggingface_hub import constants

    return constants


def _offline(hh: Any) -> bool:
    check = getattr(_constants(), "is_offline_mode", None)
    return bool(check() if callable(check) else _constants().HF_HUB_OFFLINE)


@contextlib.contextmanager
def _errors(hh: Any, repo: str, revision: str | None, file: str) -> Iterator[None]:
    """huggingface_hub's exceptions -> one InputError line saying what to do."""
    from huggingface_hub import errors as E

    endpoint = _constants().ENDPOINT
    shown = repo + (f"@{revision}" if revision else "")
    offline = (f"--hf {shown}: {file} is not in the Hub cache ({_constants().HF_HUB_CACHE}) and HF_HUB_OFFLINE is set; "
               "run once with the network, or unset HF_HUB_OFFLINE")
    try:
        yield
    except E.GatedRepoError:
        raise InputError(f"--hf {repo} is gated: accept its licence at {endpoint}/{repo} with your account, "
                         "then set HF_TOKEN to a read token of that account") from None
    except E.RepositoryNotFoundError:
        raise InputError(f"--hf {repo}: no such model on the Hub ({endpoint}), or it is private (set HF_TOKEN); "
                         "check the id, ORG/NAME as on its page") from None
    except E.RevisionNotFoundError:
        raise InputError(f"--hf {shown}: no such revision in {repo} (give a branch, tag or commit)") from None
    except E.LocalEntryNotFoundError:
        if _offline(hh):
            raise InputError(offline) from None
        raise InputError(f"--hf {shown}: the Hub ({endpoint}) cannot be reached and {file} is not in the cache "
                         f"({_constants().HF_HUB_CACHE}); check the network or HF_ENDPOINT") from None
    except E.OfflineModeIsEnabled:
        raise InputError(offline) from None
    except E.EntryNotFoundError:
        raise InputError(f"--hf {shown}: the repo has no {file}; is it a transformers model? "
                         "(a local copy works with --hf-config or --safetensors)") from None
    except E.HFValidationError:
        raise InputError(f"--hf {shown!r} is not a Hub model id; give ORG/NAME or ORG/NAME@REVISION") from None
    except E.HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", "an error")
        raise InputError(f"--hf {shown}: the Hub ({endpoint}) answered HTTP {status} for {file}; try again later") from None
    except InputError:
        raise
    except PermissionError as error:
        raise InputError(f"--hf {shown}: cannot write the Hub cache ({error.strerror}: {error.filename}); "
                         "set HF_HOME to a folder you can write") from None
    except Exception as error:  # a connection that failed mid-read (httpx's errors are not OSError)
        if not _is_network_error(error):
            raise
        raise InputError(f"--hf {shown}: the Hub ({endpoint}) cannot be reached while reading {file} "
                         f"({error.__class__.__name__}); check the network, or HF_HUB_OFFLINE=1 to use the cache") from None


def _is_network_error(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    modules = {cls.__module__.split(".")[0] for cls in type(error).__mro__}
    return bool(names & {"ConnectionError", "TimeoutError"}) or bool(modules & {"httpx", "httpx2", "httpcore", "requests", "urllib3"})


def fetch(spec: str) -> Found:
    """The config.json and (header-only) checkpoint of a Hub model; see the module docstring."""
    repo, revision = parse_spec(spec)
    hh = _hub()
    name = repo + (f"@{revision}" if revision else "")
    with _quiet():
        online = not _offline(hh) and _reachable(hh, repo, revision)
        with _errors(hh, repo, revision, "config.json"):
            # Unreachable: the cache only, at once (hf_hub_download itself would retry for ~20 s first).
            config = hh.hf_hub_download(repo, "config.json", revision=revision, local_files_only=not online)
        if os.path.getsize(config) > MAX_CONFIG_BYTES:
            raise InputError(f"--hf {name}: config.json is {os.path.getsize(config):,} bytes, too large for a config "
                             f"(limit {MAX_CONFIG_BYTES:,})")
        commit = os.path.basename(os.path.dirname(config))
        checkpoint, notes = _checkpoint(hh, repo, revision, commit, os.path.dirname(config), name, online)
    return Found(name, repo, revision, commit, config, checkpoint, tuple(notes))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """huggingface_hub's own warnings (retries, symlinks) off while we ask: our one line says what failed."""
    import logging

    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _reachable(hh: Any, repo: str, revision: str | None) -> bool:
    """Online: one HEAD of config.json, without retries. False when the Hub cannot be reached (then the
    cache answers); the Hub's refusals (gated, no such repo or revision) are InputErrors here; a config
    over MAX_CONFIG_BYTES is refused before it is downloaded."""
    try:
        with _errors(hh, repo, revision, "config.json"):
            meta = hh.get_hf_file_metadata(hh.hf_hub_url(repo, "config.json", revision=revision))
    except InputError as error:
        if "cannot be reached" in str(error):
            return False
        raise
    if meta.size is not None and meta.size > MAX_CONFIG_BYTES:
        raise InputError(f"--hf {repo}: config.json is {meta.size:,} bytes, too large for a config (limit {MAX_CONFIG_BYTES:,})")
    return True


# ----- the safetensors headers ----------------------------------------------------------------------


def _cache_file(hh: Any, repo: str, commit: str) -> str | None:
    try:
        folder = hh.cached_assets_path(library_name="llmplan", namespace=repo.replace("/", "--"), subfolder="safetensors-headers")
    except OSError:
        return None
    return os.path.join(os.fspath(folder), f"{commit}.json")


def _load_cache(path: str | None) -> dict | None:
    if path is None or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # a damaged cache entry is read again
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return None
    return data


def _save_cache(path: str | None, data: dict) -> None:
    """Written whole or not at all (a temporary file renamed over); a cache that cannot be written is skipped."""
    if path is None:
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)


def _checkpoint(hh: Any, repo: str, revision: str | None, commit: str, folder: str, name: str,
                online: bool) -> tuple["Checkpoint | None", list[str]]:
    from llmplan.model import safetensors as st

    cache = _cache_file(hh, repo, commit)
    data = _load_cache(cache)
    notes: list[str] = []
    if data is None:
        if not online:
            why = "offline (HF_HUB_OFFLINE)" if _offline(hh) else "the Hub cannot be reached"
            return None, [f"--hf {name}: {why} and the safetensors headers of commit {commit[:12]} are not "
                          "cached; the count is the config's. Run once online for the stored count by dtype"]
        data = _download_headers(hh, repo, revision, commit, name)
        if data.get("files"):
            _save_cache(cache, data)
    if not data.get("files"):
        return None, [f"--hf {name}: {data.get('why', 'no safetensors weights')}; the count is the config's"]
    headers = data.get("headers") or {}

    def header_of(file: str) -> dict:
        entry = headers.get(file)
        if not isinstance(entry, dict):
            raise InputError(f"--hf {name}: the cached headers lack {file}; delete {cache} and run again")
        raw = str(entry["header"]).encode("utf-8")
        return st.parse_header(struct.pack("<Q", len(raw)) + raw, int(entry["size"]), f"--hf {name}: {file}")

    return st.assemble(name, folder, list(data["files"]), data.get("total"), header_of, label="--hf"), notes


def _download_headers(hh: Any, repo: str, revision: str | None, commit: str, name: str) -> dict:
    """{"version", "files": [shard names], "total": index total_size, "headers": {name: {"size", "header"}}};
    "files": [] with "why" when the repo stores no safetensors."""
    from llmplan.model import safetensors as st

    total = None
    try:
        with _errors(hh, repo, revision, st.INDEX_NAME):
            index = hh.hf_hub_download(repo, st.INDEX_NAME, revision=commit)
    except InputError as error:
        if f"has no {st.INDEX_NAME}" not in str(error):
            raise
        files = [SINGLE_NAME]
    else:
        try:
            files, total = st._index(index)
        except InputError as error:
            raise InputError(str(error).replace(f"--safetensors {index!r}", f"--hf {name}: {st.INDEX_NAME}")) from None
        if not files:
            return {"version": CACHE_VERSION, "files": [], "why": f"its {st.INDEX_NAME} has an empty weight_map"}
    headers = {}
    for file in files:
        try:
            raw, size = _read_header(hh, repo, commit, file, name)
        except _Missing:
            if file == SINGLE_NAME:
                return {"version": CACHE_VERSION, "files": [], "why": f"the repo stores no {SINGLE_NAME} or {st.INDEX_NAME} (older .bin weights?)"}
            raise InputError(f"--hf {name}: {st.INDEX_NAME} names {file}, which the repo does not hold") from None
        headers[file] = {"size": size, "header": raw.decode("utf-8", errors="replace")}
    return {"version": CACHE_VERSION, "repo": repo, "commit": commit, "files": files, "total": total, "headers": headers}


class _Missing(Exception):
    """The file is not in the repo (404 EntryNotFound)."""


def _read_header(hh: Any, repo: str, commit: str, file: str, name: str) -> tuple[bytes, int]:
    """(the header's JSON bytes, the file's size) of one shard, by range requests."""
    from huggingface_hub import errors as E
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    from llmplan.model import safetensors as st

    url = hh.hf_hub_url(repo, file, revision=commit)
    where = f"--hf {name}: {file}"
    timeout = getattr(_constants(), "HF_HUB_DOWNLOAD_TIMEOUT", 10)

    def ranged(first: int, last: int) -> Any:
        headers = build_hf_headers()
        headers["Range"] = f"bytes={first}-{last}"
        with _errors(hh, repo, commit, file):
            try:
                response = get_session().get(url, headers=headers, timeout=timeout)
                hf_raise_for_status(response)
            except E.EntryNotFoundError:
                raise _Missing(file) from None
        return response

    response = ranged(0, FIRST_READ - 1)
    size = _file_size(response)
    if size is None:
        raise InputError(f"{where}: the Hub did not say the file's size (no Content-Range); cannot check the header")
    content = response.content
    length = st.header_length(content[:8], size, where)
    if 8 + length > len(content):
        content = content[:8] + ranged(8, 8 + length - 1).content
    raw = content[8:8 + length]
    if len(raw) != length:
        raise InputError(f"{where}: the header claims {length:,} bytes but {len(raw):,} came back; try again")
    return raw, size


def _file_size(response: Any) -> int | None:
    """The whole file's size: 'Content-Range: bytes 0-100000/16060522752' of a 206, else Content-Length of a 200."""
    content_range = response.headers.get("Content-Range") or ""
    m = re.fullmatch(r"\s*bytes\s+\d+-\d+/(\d+)\s*", content_range)
    if m:
        return int(m.group(1))
    if response.status_code == 200:
        length = response.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else len(response.content)
    return None
