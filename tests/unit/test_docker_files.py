"""The container setup keeps its promises, read from the files (no Docker engine here): Asterisk writes to the
shared volume and runs unprivileged with the AMI secret from the environment, Redis has a password, the
service gets longer to stop than it drains calls, the demo's backend and SMS sink run too, and the build
context leaves local state out."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ivr.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc["services"]


def _seconds(value: str) -> float:
    return float(value.rstrip("s"))


def test_asterisk_writes_the_shared_volume_and_its_dirs_are_the_services() -> None:
    services = _compose()
    [shared] = [v for v in services["asterisk"]["volumes"] if v.startswith("ivr-data:")]
    assert shared == "ivr-data:/var/lib/ivr"  # not :ro: voicemail and ops recordings are written there
    settings = load_settings(ROOT / "docker" / "ivr.toml", env={})
    for path in (settings.voicemail_dir, settings.announcements_dir, settings.prompts_cache):
        assert str(path).startswith("/var/lib/ivr/"), path  # the same path in both containers
    dockerfiles = (ROOT / "Dockerfile").read_text() + (ROOT / "docker" / "asterisk.Dockerfile").read_text()
    assert "groupadd --gid 10001 ivr" in dockerfiles and dockerfiles.count("chmod -R 2775 /var/lib/ivr") == 2


def test_asterisk_runs_unprivileged_with_the_ami_secret_from_the_environment() -> None:
    asterisk = (ROOT / "docker" / "asterisk.Dockerfile").read_text()
    assert '"-U", "asterisk"' in asterisk and "ENTRYPOINT" in asterisk
    assert "${IVR_AMI_SECRET:?" in _compose()["asterisk"]["environment"]["IVR_AMI_SECRET"]
    assert "change-me" not in (ROOT / "docker-compose.yml").read_text()


def test_the_entrypoint_writes_the_secret_and_refuses_the_placeholder(tmp_path: Path) -> None:
    shutil.copy(ROOT / "asterisk-conf" / "manager.conf", tmp_path / "manager.conf")
    script = str(ROOT / "docker" / "asterisk-entrypoint.sh")
    env = {"PATH": os.environ["PATH"], "ASTERISK_ETC": str(tmp_path)}
    for bad in ("", "change-me", "a b", "x;rm"):
        done = subprocess.run(["sh", script, "true"], env={**env, "IVR_AMI_SECRET": bad}, capture_output=True)
        assert done.returncode == 2, bad
    ok = subprocess.run(["sh", script, "true"], env={**env, "IVR_AMI_SECRET": "s3cret-Value_1"}, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    text = (tmp_path / "manager.conf").read_text()
    assert "secret = s3cret-Value_1" in text and "secret = change-me" not in text


def test_redis_needs_a_password_and_the_service_uses_it() -> None:
    services = _compose()
    assert "--requirepass" in " ".join(services["redis"]["command"])
    assert "${IVR_REDIS_PASSWORD:?" in services["redis"]["environment"]["REDISCLI_AUTH"]
    assert services["ivr"]["environment"]["IVR_REDIS_URL"].startswith("redis://:${IVR_REDIS_PASSWORD:?")


def test_docker_waits_longer_than_the_service_drains_calls() -> None:
    settings = load_settings(ROOT / "docker" / "ivr.toml", env={})
    assert _seconds(_compose()["ivr"]["stop_grace_period"]) >= settings.drain_seconds + 10


def test_every_long_running_part_has_a_healthcheck_and_the_demo_parts_run() -> None:
    services = _compose()
    assert services["asterisk"]["healthcheck"]["test"][:2] == ["CMD", "asterisk"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "HEALTHCHECK" in (ROOT / "Dockerfile").read_text()
    env = services["ivr"]["environment"]
    assert "8081" in env["IVR_BACKENDS_URL"] and "8081" in services["refbackend"]["command"]
    assert "8082" in env["IVR_SMS_URL"] and "8082" in services["smssink"]["command"]
    assert services["ivr"]["depends_on"]["asterisk"]["condition"] == "service_healthy"
    assert "'.[demo]'" in (ROOT / "Dockerfile").read_text()  # the image runs the demo's backend and sink


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", ".env", "ivr.toml"} <= ignored
