"""A crash in the middle of an import leaves the store as it was: a real process is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siyu.core import migrate
from siyu.core.db import Database
from siyu.ingest import service
from siyu.ingest.loader import DEFAULT_CHUNK_ROWS
from siyu.workspaces import service as workspaces
from tests.ingest.test_loader import counts

CHILD = """
import sys
from pathlib import Path
from siyu.core.db import Database
from siyu.ingest import service

def progress(done, total):
    print("progress", done, total, flush=True)

service.import_file(Database(sys.argv[1]), workspace_id=int(sys.argv[2]), kind="orders", path=Path(sys.argv[3]),
                    reject_file=Path(sys.argv[4]), progress=progress)
print("finished", flush=True)
"""


def orders_csv(path: Path, rows: int, prefix: str) -> Path:
    lines = ["订单号,手机号,实付金额,下单时间,商品分类"]
    lines += [
        f"{prefix}{i},1396{i % 9000 + 1000:04d}{i % 7 + 1}21,{i % 90 + 10}.50,2025-03-01 10:00:00,tea"
        for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_killed_import_leaves_store_unchanged_and_rerun_completes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    migrate.upgrade(url)
    db = Database(url)
    with db.transaction() as session:
        workspace_id = workspaces.create_workspace(session, slug="crash", name="Crash").id
    service.import_file(
        db,
        workspace_id=workspace_id,
        kind="orders",
        path=orders_csv(tmp_path / "small.csv", 50, "S"),
        reject_file=tmp_path / "r0.csv",
    )
    before = counts(db, workspace_id)
    assert before["order"] == 50

    big = orders_csv(tmp_path / "big.csv", DEFAULT_CHUNK_ROWS + 20_000, "B")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(workspace_id), str(big), str(tmp_path / "r1.csv")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SIYU_DATA_DIR": str(tmp_path)},
    )
    assert child.stdout is not None
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if line.startswith(("progress", "finished")) or not line:
            break
    # the first chunk is written inside the open transaction: kill the process there
    assert line.startswith("progress"), f"the import did not report progress before ending: {line!r}"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    assert counts(db, workspace_id) == before
    job = service.import_file(
        db, workspace_id=workspace_id, kind="orders", path=big, reject_file=tmp_path / "r2.csv"
    )
    assert job.status == "done"
    assert counts(db, workspace_id)["order"] == before["order"] + DEFAULT_CHUNK_ROWS + 20_000
    db.dispose()
