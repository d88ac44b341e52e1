"""A folder that Asterisk records into and the service reads from: paths on both sides, new take ids, and
turning a raw take into telephone audio (8 kHz mono 16-bit WAV) with a JSON side-car of metadata.

Asterisk may see the folder at another path (a chroot, a container, an NFS mount): `asterisk_dir` is
that path, `host_dir` the service's. RECORD FILE does not create folders, so the service makes them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.media.audio import AudioDecodeError, duration_seconds, to_telephone_wav

TAKE_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
RAW = "incoming"  # Asterisk writes raw takes here


def new_id(now: datetime) -> str:
    """Sortable by time, unique, safe in a file name and an AGI argument: 20261202T171353Z-3fa2c1d9."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def check_id(take_id: str) -> str:
    if not TAKE_ID.match(take_id):
        raise ValueError(f"not a recording id: {take_id!r}")
    return take_id


@dataclass(frozen=True)
class Take:
    """A normalised recording: `path` on the service side, `asterisk` what Playback/STREAM FILE plays."""

    id: str
    path: Path
    asterisk: str  # without extension
    seconds: float


class RecordingArea:
    """`incoming/<id>.wav` (raw, from Asterisk) → `<kept>/<id>.wav` (telephone audio) + `<id>.json`."""

    def __init__(self, host_dir: Path, asterisk_dir: str, kept: str = "") -> None:
        self.host_dir = host_dir
        self.asterisk_dir = asterisk_dir.rstrip("/")
        self.kept = kept  # sub-folder of finished takes ("" = host_dir itself)

    def prepare(self) -> None:
        """Make the folders (blocking; call once at start and before each recording is cheap too)."""
        (self.host_dir / RAW).mkdir(parents=True, exist_ok=True)
        self.kept_dir.mkdir(parents=True, exist_ok=True)

    @property
    def kept_dir(self) -> Path:
        return self.host_dir / self.kept if self.kept else self.host_dir

    def raw_target(self, take_id: str) -> str:
        """Where Asterisk records a take (its path, without extension)."""
        return f"{self.asterisk_dir}/{RAW}/{check_id(take_id)}"

    def raw_file(self, take_id: str) -> Path:
        return self.host_dir / RAW / f"{check_id(take_id)}.wav"

    def audio_file(self, take_id: str) -> Path:
        return self.kept_dir / f"{check_id(take_id)}.wav"

    def meta_file(self, take_id: str) -> Path:
        return self.kept_dir / f"{check_id(take_id)}.json"

    def asterisk_path(self, take_id: str) -> str:
        sub = f"/{self.kept}" if self.kept else ""
        return f"{self.asterisk_dir}{sub}/{check_id(take_id)}"

    def finish(self, take_id: str, min_seconds: float = 0.0) -> Take | None:
        """Normalise the raw take (blocking). None when there is no audio (or less than `min_seconds`): the
        raw file is removed. A raw file that cannot be decoded is kept as it is and AudioDecodeError raised."""
        raw = self.raw_file(take_id)
        if not raw.exists() or raw.stat().st_size <= 44:  # a bare WAV header
            raw.unlink(missing_ok=True)
            return None
        dst = self.audio_file(take_id)
        to_telephone_wav(raw, dst)  # raises AudioDecodeError: the raw file stays for a human
        seconds = duration_seconds(dst)
        raw.unlink(missing_ok=True)
        if seconds < min_seconds:
            dst.unlink(missing_ok=True)
            return None
        return Take(take_id, dst, self.asterisk_path(take_id), round(seconds, 2))

    def delete_audio(self, take_id: str) -> None:
        self.audio_file(take_id).unlink(missing_ok=True)
        self.raw_file(take_id).unlink(missing_ok=True)

    def write_meta(self, take_id: str, meta: dict[str, Any]) -> None:
        write_json_atomic(self.meta_file(take_id), meta)

    def read_meta(self, take_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.meta_file(take_id).read_text(encoding="utf-8"))
        return data

    def update_meta(self, take_id: str, **changes: Any) -> dict[str, Any]:
        meta = self.read_meta(take_id)
        meta.update(changes)
        self.write_meta(take_id, meta)
        return meta


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON through a temp file, fsync and rename: a reader never sees half a file, a crash loses nothing
    already written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["AudioDecodeError", "RecordingArea", "Take", "check_id", "new_id", "write_json_atomic"]
