"""Asterisk lab, build: debootstrap a Debian sid root and install Asterisk and baresip into it
(cached: a root with its ``ready`` marker is reused; a half-built one is removed first)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

from scripts.lab_host import (
    PACKAGES,
    SUITE,
    Lab,
    ensure_debootstrap,
    host_mirror,
    in_root,
    locked,
    mount_into,
    require_root,
    run,
    say,
    stop_processes,
    unmount_all,
    write,
)

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
