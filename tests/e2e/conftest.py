"""Real-Asterisk e2e fixtures: the lab (built or reused, started once per session) and phones.

Needs root (chroot, mounts). Outside root the tests are skipped with that reason; CI runs as
root, so there they run. The lab directory is ``$PRIVNUM_LAB_DIR`` (default
``/var/cache/privnum/lab``); a built root is reused, so only the first run pays the ~40 s build.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import asterisk_lab
from tests.e2e.ami import AmiClient
from tests.e2e.baresip import BaresipError, BaresipUA, Phone

# Two FastAGI addresses so every call exercises the failover chain; tests bind responders here.
AGI_PRIMARY = ("127.0.0.1", 45731)
AGI_SECONDARY = ("127.0.0.1", 45732)
SIP_PORT = int(os.environ.get("PRIVNUM_LAB_SIP_PORT", "5060"))
AMI_PORT = int(os.environ.get("PRIVNUM_LAB_AMI_PORT", "5038"))

LOCK_WAIT = 900.0  # seconds to wait for another e2e session on the same lab

MERCHANT = "13800000001"
BUYER = "13900000001"


@dataclass(frozen=True)
class RunningLab:
    lab: asterisk_lab.Lab
    sip_port: int
    ami_port: int
    agi: tuple[tuple[str, int], ...]
    log_dir: Path

    @property
    def root(self) -> Path:
        return self.lab.root

    def cli(self, command: str) -> str:
        res = subprocess.run(asterisk_lab.in_root(self.lab, ["asterisk", "-rx", command]),
                             capture_output=True, text=True, timeout=20, check=True)
        return res.stdout

    def channels(self) -> list[str]:
        """Names of the live channels (``core show channels concise``)."""
        out = self.cli("core show channels concise")
        return [line.split("!")[0] for line in out.splitlines() if "!" in line]

    def ami(self) -> AmiClient:
        return AmiClient("127.0.0.1", self.ami_port, asterisk_lab.LAB_AMI_USER,
                         asterisk_lab.LAB_AMI_SECRET)

    def password(self, number: str) -> str:
        return next(p.password for p in asterisk_lab.LAB_PHONES if p.number == number)


@pytest.fixture(scope="session")
def asterisk_lab_running(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[RunningLab]:
    if os.geteuid() != 0:
        pytest.skip("the Asterisk lab needs root (debootstrap, chroot, mounts)")
    lab = asterisk_lab.lab_from_env()
    lab.base.mkdir(parents=True, exist_ok=True)
    # One e2e session per lab at a time: a second pytest run (another developer, another
    # worktree) waits here instead of restarting Asterisk under the first one's calls.
    lock = open(lab.base / ".e2e.lock", "w")  # noqa: SIM115 - held for the whole session
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                pytest.fail(f"another e2e session holds {lab.base / '.e2e.lock'}")
            time.sleep(1)
    request.addfinalizer(lock.close)
    asterisk_lab.build(lab)
    agi = (AGI_PRIMARY, AGI_SECONDARY)
    asterisk_lab.start(lab, asterisk_lab.StartOptions(
        fastagi=tuple(f"{h}:{p}" for h, p in agi), sip_port=SIP_PORT, ami_port=AMI_PORT))
    try:
        yield RunningLab(lab, SIP_PORT, AMI_PORT, agi, tmp_path_factory.mktemp("e2e-logs"))
    finally:
        asterisk_lab.stop(lab)


@pytest.fixture
def ami(asterisk_lab_running: RunningLab) -> Iterator[AmiClient]:
    """An AMI connection to the lab for one test (its events from connect on)."""
    with asterisk_lab_running.ami() as client:
        yield client


@pytest.fixture
def phones(asterisk_lab_running: RunningLab) -> Iterator[Callable[..., BaresipUA]]:
    """Factory: ``phones(name, number, auto_answer=False)`` starts a registered UA."""
    started: list[BaresipUA] = []
    base = 15060

    def make(name: str, number: str, *, auto_answer: bool = False) -> BaresipUA:
        sip_port = base + 20 * len(started)  # +1 is baresip's TLS port; ctrl at +10
        lab = asterisk_lab_running
        ua = BaresipUA(lab.root,
                       Phone(name, number, lab.password(number), sip_port, sip_port + 10,
                             auto_answer=auto_answer),
                       registrar=f"127.0.0.1:{lab.sip_port}", log_dir=lab.log_dir)
        started.append(ua)
        try:
            ua.start()
        except BaresipError as exc:  # one retry, reason logged; a second failure fails
            ua.restart(f"start failed: {exc}")
        return ua

    yield make
    for ua in started:
        ua.stop()
