"""``flowrunner run`` of the email example, as typed, against the local mail servers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.mail import mail_setup

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "email-report.yaml"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowrunner", "run", str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_flowrunner_run_sends_and_reads_back_mail_with_secrets_from_a_file(
    tmp_path: Path,
) -> None:
    with mail_setup(tmp_path) as (run_input, secrets):
        secrets_file = tmp_path / "secrets.json"
        secrets_file.write_text(json.dumps(secrets))
        done = _run(
            "--input",
            json.dumps(run_input),
            "--secrets-file",
            str(secrets_file),
            "--output",
            "json",
        )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "completed"
    assert payload["output"] == json.loads(EXAMPLE.with_suffix(".expected.json").read_text())
    for password in secrets.values():
        assert password not in done.stdout + done.stderr


def test_flowrunner_run_reports_a_refused_login_in_one_line_and_exits_1(tmp_path: Path) -> None:
    with mail_setup(tmp_path) as (run_input, secrets):
        done = _run(
            "--input",
            json.dumps(run_input),
            "--secret",
            "SMTP_PASSWORD=not-the-password",
            "--secret",
            f"IMAP_PASSWORD={secrets['IMAP_PASSWORD']}",
        )
    assert done.returncode == 1
    assert (
        f"failed: node 'send' failed: SMTP server 127.0.0.1:{run_input['smtp_port']}: "
        "authentication failed: 535 5.7.8 Authentication credentials invalid"
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert "not-the-password" not in done.stdout + done.stderr
