"""The ``suimeet`` command as a newcomer uses it: real processes on a fresh data directory."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

COMMANDS = [
    "serve",
    "migrate",
    "demo",
    "create-user",
    "set-password",
    "rotate-terminal-token",
    "create-api-key",
]


def _run(*args: str, data: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUIMEET_DATA_DIR": str(data)}
    env.pop("SUIMEET_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    result = _run(command, "--help", data=tmp_path)
    assert result.returncode == 0 and "usage: suimeet " + command in result.stdout


def test_demo_user_token_and_key_commands(tmp_path: Path) -> None:
    demo = _run("demo", data=tmp_path)
    assert demo.returncode == 0, demo.stderr
    counts = dict((v, int(k)) for k, v in re.findall(r"(\d+) (\w+)", demo.stdout.split("\n")[0]))
    assert counts["units"] >= 1 + 11 + 15 and counts["terminals"] == counts["rooms"]
    assert demo.stdout.count("password: ") == 3
    again = _run("demo", data=tmp_path)
    assert again.returncode == 0 and "already loaded" in again.stdout

    made = _run(
        "create-user",
        "li.na@example.gov.cn",
        "--role",
        "secretariat",
        "--name",
        "李娜",
        "--unit-id",
        "1",
        "--password-stdin",
        data=tmp_path,
        stdin="a long enough password\n",
    )
    assert made.returncode == 0, made.stderr
    short = _run(
        "create-user",
        "x@example.gov.cn",
        "--role",
        "staff",
        "--name",
        "x",
        "--unit-id",
        "1",
        "--password-stdin",
        data=tmp_path,
        stdin="short\n",
    )
    assert short.returncode == 2 and "password" in short.stderr

    token = _run("rotate-terminal-token", "1", data=tmp_path)
    assert token.returncode == 0 and re.search(r"^smr_\w{12}_\S+$", token.stdout, re.M)
    missing = _run("rotate-terminal-token", "9999", data=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    key = _run("create-api-key", "--name", "OA", "--scope", "meetings:write", data=tmp_path)
    assert key.returncode == 0 and re.search(r"^smk_", key.stdout, re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_quick_start_serve_with_demo_data_and_log_in(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "SUIMEET_DATA_DIR": str(tmp_path)}
    env.pop("SUIMEET_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "SuiMeet on http://127.0.0.1" in line:
                break
        output = "".join(lines)
        password = re.search(r"admin@demo\.suimeet\.example\s+password: (\S+)", output)
        assert password, output
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        request = urllib.request.Request(
            f"{base}/api/v1/auth/token",
            method="POST",
            data=json.dumps(
                {"email": "admin@demo.suimeet.example", "password": password[1]}
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        token = json.load(urllib.request.urlopen(request, timeout=5))["token"]
        units = urllib.request.Request(
            f"{base}/api/v1/units?kind=district", headers={"Authorization": f"Bearer {token}"}
        )
        page = json.load(urllib.request.urlopen(units, timeout=5))
        assert page["total"] == 11
        assert all(u["name"].startswith("广州市") for u in page["items"])
        # the signing key was generated once, readable by its owner only
        assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
