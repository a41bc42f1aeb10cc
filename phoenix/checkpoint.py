"""Checkpoints: one `.npz` file holding the params, the config, free-form metadata and a version id.

Each parameter is stored as its own array named "param/<module>/<name>" (bit-exact float32), and the
JSON header {"format", "version", "cfg", "meta", "saved_at"} as the uint8 array "__header__". Writes go to
a temporary file in the same directory followed by `os.replace`, so a reader sees either the old file or
the new one, never a partial write. The version id is "<cfg name>-<UTC time>-<first 10 hex digits of the
sha256 of the params>", which changes whenever the params do.

A model with semantic IDs also stores its codebooks ([L, K, E] float32, fitted by training, not trained by
the optimiser) as the array "content/semantic_id_codebooks"; checkpoints without it load with None.
"""

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from phoenix.config import PhoenixConfig

FORMAT = 1
_HEADER = "__header__"
_PARAM_PREFIX = "param/"
_CODEBOOKS = "content/semantic_id_codebooks"

NestedParams = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class Checkpoint:
    params: NestedParams
    cfg: PhoenixConfig
    meta: dict[str, Any]
    version: str
    codebooks: np.ndarray | None = None  # semantic-ID codebooks [L, K, E]; None without semantic IDs


def _flatten(params: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
    flat = {}
    for module, leaves in params.items():
        for name, value in leaves.items():
            if "/" in name:
                raise ValueError(f"parameter name {name!r} contains '/'")
            flat[f"{_PARAM_PREFIX}{module}/{name}"] = np.asarray(value)
    return flat


def _unflatten(flat: Mapping[str, np.ndarray]) -> NestedParams:
    params: NestedParams = {}
    for key, value in flat.items():
        module, name = key[len(_PARAM_PREFIX) :].rsplit("/", 1)
        params.setdefault(module, {})[name] = value
    return params


def params_digest(params: Mapping[str, Mapping[str, Any]]) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(_flatten(params).items()):
        digest.update(key.encode())
        digest.update(str(value.dtype).encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str],
    params: Mapping[str, Mapping[str, Any]],
    cfg: PhoenixConfig,
    meta: dict[str, Any],
    codebooks: np.ndarray | None = None,
) -> str:
    """Atomically write a checkpoint; returns its version id (also stored in the file)."""
    if (codebooks is not None) != bool(cfg.semantic_id_levels):
        raise ValueError("a config with semantic IDs needs its codebooks, and only such a config has them")
    path = os.fspath(path)
    now = datetime.now(UTC)
    version = f"{cfg.name}-{now.strftime('%Y%m%dT%H%M%S%f')}-{params_digest(params)[:10]}"
    header = {
        "format": FORMAT,
        "version": version,
        "cfg": cfg.to_dict(),
        "meta": meta,
        "saved_at": now.isoformat(),
    }
    arrays = _flatten(params)
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    if codebooks is not None:
        arrays[_CODEBOOKS] = np.asarray(codebooks, np.float32)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return version


def _read_header(archive: Any) -> dict[str, Any]:
    header = json.loads(bytes(archive[_HEADER]).decode())
    if header.get("format") != FORMAT:
        raise ValueError(f"unsupported checkpoint format {header.get('format')!r}")
    return header


def read_version(path: str | os.PathLike[str]) -> str:
    """The version id alone, without reading the params."""
    with np.load(os.fspath(path), allow_pickle=False) as archive:
        return str(_read_header(archive)["version"])


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    with open(os.fspath(path), "rb") as f:
        data = io.BytesIO(f.read())  # one read: a concurrent atomic replace cannot mix two files
    with np.load(data, allow_pickle=False) as archive:
        header = _read_header(archive)
        flat = {key: archive[key] for key in archive.files if key.startswith(_PARAM_PREFIX)}
        codebooks = archive[_CODEBOOKS] if _CODEBOOKS in archive.files else None
    cfg = PhoenixConfig.from_dict(header["cfg"])
    if (codebooks is not None) != bool(cfg.semantic_id_levels):
        raise ValueError("checkpoint: semantic-ID codebooks and the config's semantic_id_levels disagree")
    return Checkpoint(
        params=_unflatten(flat),
        cfg=cfg,
        meta=header["meta"],
        version=header["version"],
        codebooks=codebooks,
    )
