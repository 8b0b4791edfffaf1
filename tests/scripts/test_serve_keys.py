"""``privnum serve`` and the key file, as a real process: it refuses to start (one line, non-zero
exit) when active bindings use a key the file does not hold, and warns when the file is open to
group or others."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.scripts import test_serve_process as serve_process
from tests.scripts.test_serve_process import PRIVNUM, cli

env = serve_process.env  # fixtures: a provisioned data dir with one active binding
provisioned = serve_process.provisioned


def test_serve_refuses_a_key_file_without_the_active_bindings_key(
        provisioned: dict[str, str]) -> None:
    cli(provisioned, "keys", "generate", "--force")  # a new file: the binding's key is gone
    done = subprocess.run([*PRIVNUM, "serve"], env=provisioned, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing from the key file" in errors[0], done.stderr
    assert "Traceback" not in done.stderr and "serving FastAGI" not in done.stderr


def test_serve_warns_about_a_key_file_others_can_read(provisioned: dict[str, str]) -> None:
    keys = Path(provisioned["PRIVNUM_DATA_DIR"]) / "keys.json"
    keys.chmod(0o644)
    proc = subprocess.Popen([*PRIVNUM, "serve"], env=provisioned, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "serving FastAGI" in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    seen.append(proc.stderr.read())
    proc.stderr.close()
    warnings = [line for line in "".join(seen).splitlines() if "accessible to group/others" in line]
    assert len(warnings) == 1 and "mode 0644" in warnings[0] and "WARNING" in warnings[0]
