"""The README's "Subscribing a webhook", run as printed: its shell blocks in bash, its receiver
saved as receiver.py, against a real `capmon run`.

What differs from a person's machine, and only that: the ports 8080 and 8000 are free ones;
`make run` is the `capmon run` it ends in (the Makefile's install step is the test suite's
own environment); `.venv/bin/python` is this interpreter; and capmon's sources point at a
loopback port nothing listens on, so the test never reaches caiso.com or sce.com.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def section_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Subscribing a webhook", 1)[1].split("\n## ", 1)[0]
    return [(lang, body) for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, re.S)]


class Terminal:
    """One bash, fed a block at a time like a person pasting it."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.n = 0

    async def paste(self, block: str, *, ok: bool = True) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.n += 1
        marker = f"__block_{self.n}_done__"
        self.proc.stdin.write(f"{block}\necho {marker} $?\n".encode())
        await self.proc.stdin.drain()
        out = []
        async with asyncio.timeout(60):
            while marker not in (line := (await self.proc.stdout.readline()).decode()):
                assert line, "".join(out)
                out.append(line)
        before, _, status = line.partition(marker)
        out.append(before)  # the last output line may lack its newline (curl's answers do)
        assert not ok or status.split() == ["0"], "".join(out)
        return "".join(out)


async def wait_listening(port: int) -> None:
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            await asyncio.sleep(0.1)


async def test_the_readme_webhook_walkthrough_runs_as_printed(tmp_path: Path) -> None:
    api, hooks, nowhere = free_port(), free_port(), free_port()
    blocks = [(lang, body.replace("8080", str(api)).replace("8000", str(hooks)))
              for lang, body in section_blocks()]
    (run_capmon, terminal2, receiver, terminal3, test) = blocks
    assert [lang for lang, _ in blocks] == ["sh", "sh", "python", "sh", "sh"]
    assert run_capmon[1].rstrip().endswith("make run")
    assert terminal3[1].strip() == ".venv/bin/python receiver.py"

    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (venv / "python").chmod(0o755)
    (tmp_path / "receiver.py").write_text(receiver[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")}
    env["PYTHONPATH"] = str(ROOT)
    capmon_env = {**env, **{f"CAPMON_SOURCES_{name}": f"http://127.0.0.1:{nowhere}/{path}"
                            for name, path in (("CAISO_OUTLOOK_URL", "outlook"),
                                               ("CAISO_FLEX_URL", "flex"),
                                               ("CAISO_OASIS_URL", "oasis"),
                                               ("SCE_API_URL", "sce"), ("SCE_HTML_URL", "sce"))},
                  "CAPMON_API_PORT": str(api)}
    script = run_capmon[1].replace("make run", f"exec {sys.executable} -m capmon.cli run")
    capmon = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=tmp_path, env=capmon_env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    shell = await asyncio.create_subprocess_exec(
        "bash", cwd=tmp_path, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    listener = None
    try:
        await wait_listening(api)
        term = Terminal(shell)
        out = await term.paste(terminal2[1])
        assert '"api_key": "cm_' in out and "health_subscription" in out
        assert (tmp_path / "webhook-secret").read_text().startswith("whsec_")
        listener = await asyncio.create_subprocess_exec(
            "bash", "-c", terminal3[1], cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        await wait_listening(hooks)
        out = await term.paste(test[1])
        assert '"status": "queued"' in out
        assert listener.stdout is not None
        async with asyncio.timeout(60):
            while b"capmon test notification for risk system" not in (
                    line := await listener.stdout.readline()):
                assert line, "the receiver ended without printing the test notification"
        assert b"['capmon.test:" in line
    finally:
        for proc in (listener, shell, capmon):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await proc.wait()


async def test_an_error_in_the_walkthrough_shows_instead_of_null(tmp_path: Path) -> None:
    """capmon started without the admin key (plain `make run`): the tenant call's problem is
    shown and the next step fails on it; nothing goes on with "null"."""
    api = free_port()
    _, terminal2 = section_blocks()[:2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPMON_")}
    env["PYTHONPATH"] = str(ROOT)
    (tmp_path / ".admin-key").write_text("a-key-capmon-was-not-given\n")
    capmon = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "capmon.cli", "run", "--port", str(api), cwd=tmp_path,
        env={**env, "CAPMON_SOURCES_ENABLED": "caiso-ra-outlook",
             "CAPMON_SOURCES_CAISO_OUTLOOK_URL": f"http://127.0.0.1:{free_port()}/outlook"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    shell = await asyncio.create_subprocess_exec(
        "bash", cwd=tmp_path, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        await wait_listening(api)
        out = await Terminal(shell).paste(terminal2[1].replace("8080", str(api)), ok=False)
    finally:
        for proc in (shell, capmon):
            proc.terminate()
            await proc.wait()
    assert '"title": "Admin API disabled"' in out and "401" in out
    assert "KeyError: 'api_key'" in out
    assert "null" not in out
