"""Asterisk lab: a Debian sid chroot with Asterisk 22 and baresip, for PBX admins and the e2e suite.

Usage (as root): ``scripts/asterisk-lab build | start | stop | status | cli "core show version"``.

The chroot lives in ``$PRIVNUM_LAB_DIR`` (default ``/var/cache/privnum/lab``): ``root/`` is the
Debian tree, ``ready`` the marker written only after a successful build, ``asterisk.pid`` the
running Asterisk. Stdlib only, so it runs before the project is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.asterisk_render import LabPhone, RenderOptions, render

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
# Lab phones: merchant (caller A) and buyers (B). Fake numbers, lab only.
LAB_PHONES = (
    LabPhone("13800000001", "lab-merchant-1"),
    LabPhone("13800000002", "lab-merchant-2"),
    LabPhone("13900000001", "lab-buyer-1"),
    LabPhone("13900000002", "lab-buyer-2"),
)
LAB_AMI_USER = "privnum"
LAB_AMI_SECRET = "privnum-lab"  # loopback-only lab credential


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


# ---------------------------------------------------------------- build


def build(lab: Lab) -> None:
    require_root()
    with locked(lab):
        if lab.is_built():
            say(f"lab root ready at {lab.root} (reused)")
            return
        _build(lab)


def _build(lab: Lab) -> None:
    t0 = time.monotonic()
    if lab.root.exists():
        say(f"removing half-built root {lab.root}")
        stop_processes(lab)
        unmount_all(lab)  # never rm -rf across a bind mount of the host's /dev
        shutil.rmtree(lab.root)
    lab.marker.unlink(missing_ok=True)
    ensure_debootstrap()
    mirror = host_mirror()
    blog = lab.base / "build.log"
    blog.write_text("")
    say(f"debootstrap --variant=minbase {SUITE} into {lab.root}")
    run(["debootstrap", "--variant=minbase", SUITE, str(lab.root), mirror], log=blog)
    say(f"debootstrap done in {time.monotonic() - t0:.0f} s")
    write(lab.root / "etc/apt/apt.conf.d/99privnum-lab",
          'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n'
          'APT::Install-Suggests "false";\n')
    policy = lab.root / "usr/sbin/policy-rc.d"
    write(policy, "#!/bin/sh\n# privnum lab: never start services from package scripts\nexit 101\n")
    policy.chmod(0o755)
    t1 = time.monotonic()
    say(f"apt-get install {' '.join(PACKAGES)} inside the root")
    mount_into(lab, ("proc",))
    try:
        run(in_root(lab, ["apt-get", "update", "-q"]), log=blog)
        run(in_root(lab, ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                          *PACKAGES]), log=blog)
        run(in_root(lab, ["apt-get", "clean"]), log=blog)
    finally:
        unmount_all(lab)
    version = subprocess.run(in_root(lab, ["dpkg-query", "-W", "-f=${Version}", "asterisk"]),
                             capture_output=True, text=True, check=False).stdout.strip()
    say(f"install done in {time.monotonic() - t1:.0f} s (asterisk {version})")
    dist = lab.root / "etc/asterisk.dist"
    if not dist.exists():  # keep the package's samples; /etc/asterisk gets only our files
        (lab.root / "etc/asterisk").rename(dist)
    write(lab.marker, json.dumps({"asterisk": version, "built": time.time()}) + "\n")
    say(f"lab built in {time.monotonic() - t0:.0f} s at {lab.root}")


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


@dataclass(frozen=True)
class StartOptions:
    fastagi: tuple[str, ...] = ("127.0.0.1:4573",)
    sip_port: int = 5060
    ami_port: int = 5038
    boot_timeout: float = 60.0


def lab_render_options(opts: StartOptions, lab: Lab) -> RenderOptions:
    return RenderOptions(
        fastagi=opts.fastagi,
        ami_user=LAB_AMI_USER,
        ami_secret=LAB_AMI_SECRET,
        ami_bind="127.0.0.1",
        ami_port=opts.ami_port,
        sip_bind="127.0.0.1",
        sip_port=opts.sip_port,
        dial_template="PJSIP/{number}",
        lab_phones=LAB_PHONES,
        system_name="pnlab",
        verbose_log=True,
    )


def start(lab: Lab, opts: StartOptions) -> None:
    require_root()
    if not lab.is_built():
        build(lab)
    with locked(lab):
        if running_pid(lab) is not None:
            say("already running; stopping it first")
            stop_processes(lab)
        t0 = time.monotonic()
        mount_into(lab)
        hostname = socket.gethostname()
        write(lab.root / "etc/hosts",
              f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost\n")
        etc = lab.root / "etc/asterisk"
        if etc.exists():
            shutil.rmtree(etc)
        ropts = lab_render_options(opts, lab)
        files = render(ropts, etc)
        say(f"rendered {len(files)} files into {etc}")
        for sub in ("run/asterisk", "var/log/asterisk/cdr-custom", "var/lib/asterisk",
                    "var/spool/asterisk"):
            (lab.root / sub).mkdir(parents=True, exist_ok=True)
        own_pid = lab.root / "run/asterisk/asterisk.pid"
        own_pid.unlink(missing_ok=True)
        # Asterisk daemonises itself (no child left behind for us to reap); logs go to
        # <root>/var/log/asterisk/messages.log.
        with open(lab.logfile, "wb") as log:
            rc = subprocess.run(
                in_root(lab, ["/usr/sbin/asterisk", "-C", "/etc/asterisk/asterisk.conf"]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=30,
                check=False, start_new_session=True,
            ).returncode
        if rc != 0:
            raise LabError(f"asterisk failed to start ({rc}); see {lab.logfile}")
        deadline = time.monotonic() + opts.boot_timeout
        pid = 0
        while True:
            with contextlib.suppress(OSError, ValueError):
                pid = int(own_pid.read_text().strip())
            if pid and pid_alive(pid):
                break
            if time.monotonic() > deadline:
                raise LabError(f"asterisk wrote no pid file; see {lab.messages}")
            time.sleep(0.1)
        lab.pidfile.write_text(f"{pid}\n")
        write(lab.startfile, json.dumps({
            "pid": pid, "fastagi": list(opts.fastagi), "sip_port": opts.sip_port,
            "ami_port": opts.ami_port, "ami_user": LAB_AMI_USER, "ami_secret": LAB_AMI_SECRET,
            "phones": {p.number: p.password for p in LAB_PHONES},
        }, indent=2) + "\n")
        while True:
            if not pid_alive(pid):
                raise LabError(f"asterisk exited during boot; see {lab.messages}")
            res = subprocess.run(in_root(lab, ["asterisk", "-rx", "core waitfullybooted"]),
                                 capture_output=True, text=True, timeout=30, check=False)
            if res.returncode == 0 and "fully booted" in res.stdout.lower():
                break
            if time.monotonic() > deadline:
                raise LabError(f"asterisk not fully booted after {opts.boot_timeout:.0f} s")
            time.sleep(0.2)
        say(f"asterisk pid {pid} fully booted in {time.monotonic() - t0:.1f} s; "
            f"SIP 127.0.0.1:{opts.sip_port} (udp+tcp), AMI 127.0.0.1:{opts.ami_port}, "
            f"FastAGI {', '.join(opts.fastagi)}")


def stop(lab: Lab) -> None:
    require_root()
    if not lab.base.exists():
        say("nothing to stop")
        return
    with locked(lab):
        had = running_pid(lab)
        stop_processes(lab)
        unmount_all(lab)
        lab.startfile.unlink(missing_ok=True)
    say("stopped" if had else "nothing was running; mounts cleaned")


def status(lab: Lab) -> int:
    built = lab.is_built()
    pid = running_pid(lab)
    others = [p for p in processes_in_root(lab) if p != pid] if lab.root.exists() else []
    mounts = mounted_under(lab.root) if lab.root.exists() else []
    info = json.loads(lab.marker.read_text()) if built else {}
    print(f"lab dir:  {lab.base}")
    print(f"built:    {'yes, asterisk ' + info.get('asterisk', '?') if built else 'no'}")
    print(f"asterisk: {'running, pid ' + str(pid) if pid else 'not running'}")
    if others:
        print(f"other processes in the root: {', '.join(map(str, others))}")
    if mounts:
        print(f"mounts:   {', '.join(str(m.relative_to(lab.root)) for m in mounts)}")
    return 0 if pid else 3


def cli(lab: Lab, command: str) -> int:
    require_root()
    if running_pid(lab) is None:
        raise LabError("asterisk is not running (scripts/asterisk-lab start)")
    return subprocess.run(in_root(lab, ["asterisk", "-rx", command]), check=False).returncode


# ---------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="asterisk-lab", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build", help="debootstrap sid + install asterisk and baresip (cached)")
    st = sub.add_parser("start", help="render the config and start asterisk on loopback")
    st.add_argument("--agi", action="append", metavar="HOST:PORT",
                    help="privnum FastAGI service; repeat for failover (default 127.0.0.1:4573)")
    st.add_argument("--sip-port", type=int, default=5060)
    st.add_argument("--ami-port", type=int, default=5038)
    sub.add_parser("stop", help="stop asterisk and everything in the root; unmount")
    sub.add_parser("status", help="what is built and running")
    c = sub.add_parser("cli", help='run "asterisk -rx COMMAND" inside the root')
    c.add_argument("command")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    lab = lab_from_env()
    try:
        if args.cmd == "build":
            build(lab)
        elif args.cmd == "start":
            start(lab, StartOptions(fastagi=tuple(args.agi or ("127.0.0.1:4573",)),
                                    sip_port=args.sip_port, ami_port=args.ami_port))
        elif args.cmd == "stop":
            stop(lab)
        elif args.cmd == "status":
            return status(lab)
        elif args.cmd == "cli":
            return cli(lab, args.command)
    except (LabError, ValueError) as exc:
        print(f"asterisk-lab: error: {exc}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as exc:
        print(f"asterisk-lab: error: timed out: {exc.cmd}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
