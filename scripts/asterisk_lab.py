"""Asterisk lab: a Debian sid chroot with Asterisk 22 and baresip, for PBX admins and the e2e suite.

Usage (as root): ``scripts/asterisk-lab build | start | stop | status | cli "core show version"``.

The chroot lives in ``$PRIVNUM_LAB_DIR`` (default ``/var/cache/privnum/lab``): ``root/`` is the
Debian tree, ``ready`` the marker written only after a successful build, ``asterisk.pid`` the
running Asterisk. Stdlib only, so it runs before the project is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scripts.asterisk_include import apply, plan, set_value
from scripts.asterisk_render import LabPhone, RenderOptions, render
from scripts.lab_build import build
from scripts.lab_host import (
    DEFAULT_LAB_DIR,
    Lab,
    LabError,
    in_root,
    lab_from_env,
    locked,
    mount_into,
    mounted_under,
    pid_alive,
    processes_in_root,
    require_root,
    running_pid,
    say,
    stop_processes,
    unmount_all,
    write,
)

__all__ = ["DEFAULT_LAB_DIR", "LAB_AMI_SECRET", "LAB_AMI_USER", "LAB_PHONES", "Lab", "LabError",
           "StartOptions", "build", "in_root", "lab_from_env", "main", "start", "status", "stop"]

# Lab phones: merchant (caller A) and buyers (B). Fake numbers, lab only.
LAB_PHONES = (
    LabPhone("13800000001", "lab-merchant-1"),
    LabPhone("13800000002", "lab-merchant-2"),
    LabPhone("13900000001", "lab-buyer-1"),
    LabPhone("13900000002", "lab-buyer-2"),
)
LAB_AMI_USER = "privnum"
LAB_AMI_SECRET = "privnum-lab"  # loopback-only lab credential



MODES = ("full", "include")


@dataclass(frozen=True)
class StartOptions:
    fastagi: tuple[str, ...] = ("127.0.0.1:4573",)
    sip_port: int = 5060
    ami_port: int = 5038
    boot_timeout: float = 60.0
    mode: str = "full"
    """full: /etc/asterisk is privnum's configuration alone. include: Debian's stock
    configuration (the package's samples) with privnum's parts included, as a PBX admin adds
    them (``privnum asterisk render --mode include``)."""


LAB_RECORDING_DIR = "/var/spool/asterisk/privnum-recordings"
"""Where the lab's MixMonitor writes (inside the root; privnum sees it under ``lab.root``)."""


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
        recording_dir=LAB_RECORDING_DIR,
        # The e2e suite's callers send extensions as DTMF from an originated Local channel.
        extra_modules=("app_senddtmf.so",),
    )


def write_config(lab: Lab, opts: StartOptions) -> None:
    """The lab's /etc/asterisk, afresh."""
    etc = lab.root / "etc/asterisk"
    if etc.exists():
        shutil.rmtree(etc)
    ropts = lab_render_options(opts, lab)
    if opts.mode == "include":
        # The stock samples have no PJSIP transport: privnum brings its own here.
        shutil.copytree(lab.root / "etc/asterisk.dist", etc)
        apply(plan(replace(ropts, own_transports=True)), etc)
        manager = etc / "manager.conf"  # the stock AMI listens on 5038; the lab's port wins
        manager.write_text(set_value(manager.read_text(), "general", "port",
                                     str(opts.ami_port)))
        say(f"Debian's stock configuration with privnum's parts included, in {etc}")
    else:
        files = render(ropts, etc)
        say(f"rendered {len(files)} files into {etc}")


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
        write_config(lab, opts)
        for sub in ("run/asterisk", "var/log/asterisk/cdr-custom", "var/lib/asterisk",
                    "var/spool/asterisk", LAB_RECORDING_DIR.lstrip("/")):
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
            "pid": pid, "mode": opts.mode, "fastagi": list(opts.fastagi),
            "sip_port": opts.sip_port,
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
    st.add_argument("--mode", choices=MODES, default="full",
                    help="full: privnum's configuration alone; include: Debian's stock "
                    "configuration with privnum's parts #included (as on an existing PBX)")
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
                                    sip_port=args.sip_port, ami_port=args.ami_port,
                                    mode=args.mode))
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
