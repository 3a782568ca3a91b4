"""Row 8 of the fault matrix (the server refuses the token) and SIGHUP (issue 12 item 8):
uploading pauses and says so, nothing is failed; the token is fixed in its file, SIGHUP
reloads the configuration (one log line per signal, the service never dies of it) and the
queue drains without a restart."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration.faults import oracle
from tests.integration.harness import Instance, running, stop

pytestmark = pytest.mark.slow

TOKEN = "c3RhdGlvbjpyaWdodA=="


def test_refused_token_pauses_and_sighup_with_the_fixed_token_resumes(tmp_path: Path) -> None:
    token_file = tmp_path / "ict.token"
    token_file.write_text("d3Jvbmc6dG9rZW4=\n")
    with oracle.receiving(tmp_path / "rx.db", "--token", TOKEN) as rx:
        inst = Instance(tmp_path, "ict", server_url=rx.url)
        url_line = f'url = "{rx.url}"\n'
        inst.config.write_text(
            inst.config.read_text().replace(url_line, f'{url_line}token_file = "{token_file}"\n')
        )
        ids = set(inst.drop(20))
        with running(inst.serve()) as proc:
            inst.wait_ready()
            oracle.wait_lines(inst, "ERROR uploader: uploader paused")
            counts = inst.queue_counts()
            assert counts["failed"] == 0
            assert counts["done"] == 0
            assert rx.ids() == set()
            token_file.write_text(TOKEN + "\n")
            proc.send_signal(signal.SIGHUP)
            oracle.drained(inst, rx, ids, timeout=60)
            # More reloads with nothing changed: a line each, and the service lives on.
            for seen in range(1, 4):
                proc.send_signal(signal.SIGHUP)
                oracle.wait_lines(inst, "SIGHUP: reading the configuration", more_than=seen)
            assert proc.poll() is None
            ids |= oracle.fresh_file_flows(inst, rx, start=100)
            assert stop(proc) == 0
        oracle.check(inst, rx, ids)
    log = inst.log()
    assert len(oracle.log_lines(log, "SIGHUP: reading the configuration again")) == 4
    paused = oracle.log_lines(log, "ERROR uploader: uploader paused")
    assert len(paused) == 1
    assert "refused the token" in paused[0]
    assert TOKEN not in log
    assert "d3Jvbmc6dG9rZW4=" not in log
    assert "Traceback" not in log
