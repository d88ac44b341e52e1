"""A private Asterisk for one test session, run from the Debian sid chroot built by scripts/asterisk-chroot.

The instance lives in a work dir inside the chroot (``$ROOT/tmp/ivr-e2e-<random>``) with its own etc, lib,
spool, run, log and cache dirs, and its own SIP/AMI/RTP ports, so several sessions can run side by side.
Its configuration is ``asterisk-conf/*.conf`` with a few lines rewritten by :func:`render_config`.
Asterisk runs as root (see FACTS.md: its dirs must be root's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.ports import free_tcp_port, free_udp_port, free_udp_range
from lab.procs import die_with_parent

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "asterisk-conf"
DEFAULT_ROOT = Path(os.environ.get("IVR_ASTERISK_ROOT", "~/.cache/ivr/asterisk-sid")).expanduser()
RTP_PORTS = 200  # per instance: 2 ports (RTP+RTCP) per call, 100 calls
ADMIN_USER = "e2e-admin"


class ChrootMissing(RuntimeError):
    """The Asterisk chroot is not there: run scripts/asterisk-chroot."""


@dataclass(frozen=True)
class SoundsDir:
    """A dir the service writes prompts to (``host``) and Asterisk plays them from (``asterisk``)."""

    host: Path
    asterisk: str

    def prompt(self, name: str) -> str:
        """The name to give Playback/STREAM FILE for ``<dir>/<name>.<ext>`` (no extension)."""
        return f"{self.asterisk}/{name}"


@dataclass(frozen=True)
class Settings:
    """What differs between instances: every value :func:`render_config` writes."""

    dirs: dict[str, str]  # asterisk.conf [directories] key -> Asterisk-side path
    sip_port: int
    rtp_start: int
    rtp_end: int
    ami_port: int
    ami_secret: str
    ami_admin_secret: str
    agi_host: str
    agi_port: int


def _sub_once(text: str, pattern: str, repl: str, what: str) -> str:
    new, n = re.subn(pattern, repl, text, flags=re.MULTILINE)
    if n != 1:
        raise ValueError(f"asterisk-conf: expected exactly one {what}, found {n}")
    return new


def render_config(name: str, text: str, s: Settings) -> str:
    """The test copy of one asterisk-conf file: only ports, paths, secrets and the AGI target change.

    Every rewrite must match exactly once, so a config edit that breaks one fails loudly.
    """
    if name == "asterisk.conf":
        for key, path in s.dirs.items():
            text = _sub_once(text, rf"^{key}\s*=>.*$", f"{key} => {path}", f"'{key} =>' line")
    elif name == "pjsip.conf":
        text = _sub_once(text, r"^bind\s*=\s*127\.0\.0\.1:5060\s*$", f"bind = 127.0.0.1:{s.sip_port}",
                         "transport bind line")
    elif name == "rtp.conf":
        text = _sub_once(text, r"^rtpstart\s*=.*$", f"rtpstart = {s.rtp_start}", "rtpstart")
        text = _sub_once(text, r"^rtpend\s*=.*$", f"rtpend = {s.rtp_end}", "rtpend")
    elif name == "manager.conf":
        text = _sub_once(text, r"^port\s*=\s*5038\s*$", f"port = {s.ami_port}", "AMI port line")
        text = _sub_once(text, r"^secret\s*=\s*change-me\s*$", f"secret = {s.ami_secret}", "ivr secret")
        # Test-only observer that sees every event class (used to prove what the `ivr` user must not see).
        text += (f"\n[{ADMIN_USER}]\nsecret = {s.ami_admin_secret}\ndeny = 0.0.0.0/0.0.0.0\n"
                 "permit = 127.0.0.1/255.255.255.255\nread = all\nwrite = all\n")
    elif name == "extensions.conf":
        text = _sub_once(text, r"^IVR_AGI\s*=.*$", f"IVR_AGI = {s.agi_host}:{s.agi_port}", "IVR_AGI global")
    return text


def _mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/mounts") as f:
        return any(line.split()[1] == target for line in f)


def ensure_mounts(root: Path) -> None:
    """proc on $ROOT/proc and /dev bound on $ROOT/dev (left mounted: other sessions use them too)."""
    if not _mounted(root / "proc"):
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    if not _mounted(root / "dev"):
        subprocess.run(["mount", "--bind", "/dev", str(root / "dev")], check=True)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def sweep_stale_workdirs(root: Path, min_age: float = 600.0) -> None:
    """Remove work dirs of instances that are gone (their test run was killed) and older than
    ``min_age`` seconds, so a starting run never touches a live neighbour's dir."""
    for d in (root / "tmp").glob("ivr-e2e-*"):
        with contextlib.suppress(OSError):
            if time.time() - d.stat().st_mtime > min_age and not _alive(d / "run" / "asterisk.pid"):
                shutil.rmtree(d, ignore_errors=True)


def check_root(root: Path) -> None:
    """Fail with the fix when the environment cannot run the chroot."""
    if os.geteuid() != 0:
        raise PermissionError("the e2e tests run Asterisk in a chroot and must run as root")
    if not (root / "usr/sbin/asterisk").exists():
        raise ChrootMissing(f"no Asterisk chroot at {root}: run scripts/asterisk-chroot "
                            "(or set IVR_ASTERISK_ROOT to where it is)")


class AsteriskInstance:
    """One running Asterisk. ``start()`` returns when it is fully booted; ``stop()`` ends it and
    removes its work dir (unless ``keep``)."""

    def __init__(self, agi_port: int | None = None, agi_host: str = "127.0.0.1",
                 root: Path | None = None, keep: bool = False) -> None:
        self.root = (root or DEFAULT_ROOT).resolve()
        check_root(self.root)
        self.keep = keep
        self.workdir = Path(self.root / "tmp" / f"ivr-e2e-{secrets.token_hex(4)}")
        self.agi_host = agi_host
        self.agi_port = agi_port if agi_port is not None else free_tcp_port()
        self.sip_port = free_udp_port()
        self.ami_port = free_tcp_port()
        self.rtp_start = free_udp_range(RTP_PORTS)
        self.rtp_end = self.rtp_start + RTP_PORTS - 1
        self.ami_user = "ivr"
        self.ami_secret = secrets.token_hex(12)
        self.ami_admin_user = ADMIN_USER
        self.ami_admin_secret = secrets.token_hex(12)
        self.proc: subprocess.Popen[bytes] | None = None

    # ---- paths -----------------------------------------------------------------------------------
    def asterisk_path(self, host_path: Path | str) -> str:
        """The path Asterisk (inside the chroot) sees for a host path under the chroot."""
        rel = Path(host_path).resolve().relative_to(self.root)
        return "/" + rel.as_posix()

    def host_path(self, asterisk_path: str) -> Path:
        """The host path of a path as Asterisk sees it."""
        return self.root / asterisk_path.lstrip("/")

    @property
    def conf_path(self) -> str:
        return self.asterisk_path(self.workdir / "etc" / "asterisk.conf")

    def sounds_dir(self) -> SoundsDir:
        d = self.workdir / "sounds"
        d.mkdir(parents=True, exist_ok=True)
        return SoundsDir(d, self.asterisk_path(d))

    # ---- lifecycle -------------------------------------------------------------------------------
    def _settings(self) -> Settings:
        sub = {"astetcdir": "etc", "astvarlibdir": "lib", "astdbdir": "lib", "astkeydir": "lib",
               "astspooldir": "spool", "astrundir": "run", "astlogdir": "log", "astcachedir": "cache"}
        base = self.asterisk_path(self.workdir)
        return Settings(
            dirs={k: f"{base}/{v}" for k, v in sub.items()}, sip_port=self.sip_port,
            rtp_start=self.rtp_start, rtp_end=self.rtp_end, ami_port=self.ami_port,
            ami_secret=self.ami_secret, ami_admin_secret=self.ami_admin_secret,
            agi_host=self.agi_host, agi_port=self.agi_port,
        )

    def _write_config(self) -> None:
        settings = self._settings()
        for sub in ("etc", "lib", "lib/keys", "spool", "run", "log", "cache", "sounds"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        for src in sorted(CONF_DIR.glob("*.conf")):
            (self.workdir / "etc" / src.name).write_text(render_config(src.name, src.read_text(), settings))
        os.chown(self.workdir, 0, 0)

    def start(self, timeout: float = 60.0) -> AsteriskInstance:
        ensure_mounts(self.root)
        sweep_stale_workdirs(self.root)
        self._write_config()
        out = open(self.workdir / "log" / "stdout.log", "wb")  # noqa: SIM115 - owned by the process
        try:
            self.proc = subprocess.Popen(
                ["chroot", str(self.root), "asterisk", "-f", "-n", "-C", self.conf_path],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent,
            )
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"asterisk exited with {self.proc.returncode} while starting\n"
                                   + self.log_text())
            r = self._cli_run("core waitfullybooted", timeout=5)
            if r.returncode == 0 and "fully booted" in r.stdout:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"asterisk did not boot in {timeout}s\n{self.log_text()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> AsteriskInstance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- CLI -------------------------------------------------------------------------------------
    def _cli_argv(self, command: str) -> list[str]:
        return ["chroot", str(self.root), "asterisk", "-C", self.conf_path, "-rx", command]

    def _cli_run(self, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(self._cli_argv(command), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(self._cli_argv(command), 124, "", "timeout")

    def cli(self, command: str, timeout: float = 30.0) -> str:
        """Run a CLI command (``asterisk -rx``) and return its output; raises if it cannot connect."""
        r = self._cli_run(command, timeout)
        if r.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r} failed ({r.returncode}): {r.stderr or r.stdout}")
        return r.stdout

    async def acli(self, command: str, time_limit: float = 30.0) -> str:
        """:meth:`cli` without blocking the event loop (use it while calls are running)."""
        proc = await asyncio.create_subprocess_exec(
            *self._cli_argv(command), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), time_limit)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r} failed ({proc.returncode}): {err.decode()}")
        return out.decode()

    def set_agi_target(self, host: str, port: int) -> None:
        """Point the dialplan's IVR_AGI global at another FastAGI server (no restart)."""
        self.cli(f"dialplan set global IVR_AGI {host}:{port}")
        self.agi_host, self.agi_port = host, port

    # ---- logs ------------------------------------------------------------------------------------
    def log_path(self, name: str = "full.log") -> Path:
        return self.workdir / "log" / name

    def log_mark(self) -> int:
        """The current size of full.log: pass it to :meth:`log_text` to see only what came after."""
        p = self.log_path()
        return p.stat().st_size if p.exists() else 0

    def log_text(self, since: int = 0, tail: int = 400) -> str:
        """full.log (verbose 3: dialplan, AGI, SIP, queues) from byte ``since``, at most the last
        ``tail`` lines, plus Asterisk's stdout; for dumping on a test failure."""
        parts = []
        for name, start in (("full.log", since), ("stdout.log", 0)):
            p = self.log_path(name)
            if not p.exists():
                continue
            with open(p, "rb") as f:
                f.seek(start)
                lines = f.read().decode(errors="replace").splitlines()[-tail:]
            if lines:
                parts.append(f"===== {name} (last {len(lines)} lines) =====\n" + "\n".join(lines))
        return "\n".join(parts) or "(Asterisk logged nothing in that time)"
