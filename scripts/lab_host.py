"""Asterisk lab, host side: the lab's paths, running commands in the chroot, mounts and the
processes inside it. Stdlib only, so it runs before the project is installed."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LAB_DIR = "/var/cache/privnum/lab"
SUITE = "sid"
PACKAGES = ("asterisk", "baresip")
MOUNTS = ("proc", "dev", "dev/pts")  # mounted in this order, unmounted in reverse
CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}


class LabError(Exception):
    """A failure shown to the user as one line."""


@dataclass(frozen=True)
class Lab:
    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def marker(self) -> Path:
        return self.base / "ready"

    @property
    def pidfile(self) -> Path:
        return self.base / "asterisk.pid"

    @property
    def logfile(self) -> Path:
        return self.base / "asterisk.out"

    @property
    def messages(self) -> Path:
        return self.root / "var/log/asterisk/messages.log"

    @property
    def startfile(self) -> Path:
        """The options the running lab was started with (JSON), for tests and `status`."""
        return self.base / "started.json"

    def is_built(self) -> bool:
        return self.marker.is_file() and (self.root / "usr/sbin/asterisk").is_file()


def lab_from_env() -> Lab:
    return Lab(Path(os.environ.get("PRIVNUM_LAB_DIR", DEFAULT_LAB_DIR)).resolve())


def say(msg: str) -> None:
    print(f"asterisk-lab: {msg}", flush=True)


def run(cmd: Sequence[str], *, quiet: bool = False, check: bool = True,
        log: Path | None = None) -> int:
    """Run ``cmd``; ``log``: append its output there and show the tail if it fails."""
    if log is not None:
        with open(log, "ab") as fh:
            fh.write(f"$ {' '.join(cmd)}\n".encode())
            fh.flush()
            rc = subprocess.run(list(cmd), stdout=fh, stderr=subprocess.STDOUT,
                                check=False).returncode
        if check and rc != 0:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print("\n".join(tail), file=sys.stderr)
            raise LabError(f"command failed ({rc}): {' '.join(cmd)} (full output: {log})")
        return rc
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.run(list(cmd), stdout=out, stderr=out if quiet else None, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return proc.returncode


def in_root(lab: Lab, cmd: Sequence[str]) -> list[str]:
    env = [f"{k}={v}" for k, v in CHROOT_ENV.items()]
    return ["chroot", str(lab.root), "/usr/bin/env", "-i", *env, *cmd]


# ---------------------------------------------------------------- host helpers


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("must run as root (debootstrap, chroot and mounts need it)")


def host_mirror() -> str:
    """The host's own Debian mirror, read at run time (never hard-coded)."""
    override = os.environ.get("PRIVNUM_LAB_MIRROR")
    if override:
        return override
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.is_file():
        for stanza in deb822.read_text().split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
            suites = fields.get("suites", "")
            if "deb" in fields.get("types", "").split() and "security" not in suites:
                uris = fields.get("uris", "").split()
                if uris:
                    return uris[0]
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in line:
                return next(p for p in parts[1:] if "://" in p)
    raise LabError("cannot find the host's Debian mirror (set PRIVNUM_LAB_MIRROR)")


def ensure_debootstrap() -> None:
    if shutil.which("debootstrap"):
        return
    say("installing debootstrap on the host")
    run(["apt-get", "update", "-q"], quiet=True)
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    run([*env_cmd, "apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"])


def mounted_under(path: Path) -> list[Path]:
    """Mount points at or below ``path``, deepest first."""
    prefix = str(path)
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(Path(point))
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def unmount_all(lab: Lab) -> None:
    for point in mounted_under(lab.root):
        if run(["umount", str(point)], quiet=True, check=False) != 0:
            run(["umount", "-l", str(point)], quiet=True, check=False)
    left = mounted_under(lab.root)
    if left:
        raise LabError(f"still mounted: {', '.join(map(str, left))}")


@contextlib.contextmanager
def locked(lab: Lab) -> Iterator[None]:
    lab.base.mkdir(parents=True, exist_ok=True)
    with open(lab.base / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)



# ---------------------------------------------------------------- start / stop


def mount_into(lab: Lab, which: Sequence[str] = MOUNTS) -> None:
    current = set(mounted_under(lab.root))
    for name in which:
        target = lab.root / name
        if target in current:
            continue
        target.mkdir(parents=True, exist_ok=True)
        if name == "proc":
            run(["mount", "-t", "proc", "proc", str(target)])
        else:
            run(["mount", "--bind", f"/{name}", str(target)])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return state.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def running_pid(lab: Lab) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(lab.pidfile.read_text().strip())
        if pid_alive(pid):
            return pid
    return None


def processes_in_root(lab: Lab) -> list[int]:
    """PIDs of processes whose root directory is the lab root (asterisk, baresip, ...)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "root") == str(lab.root):
                pids.append(int(entry.name))
    return pids


def stop_processes(lab: Lab, timeout: float = 10.0) -> None:
    pid = running_pid(lab)
    if pid is not None:
        subprocess.run(in_root(lab, ["asterisk", "-rx", "core stop now"]), capture_output=True,
                       timeout=15, check=False)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = processes_in_root(lab)
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if pid_alive(p)]
            time.sleep(0.1)
        if not pids:
            break
    lab.pidfile.unlink(missing_ok=True)
