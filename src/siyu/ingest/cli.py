"""`siyu import customers|orders|events FILE`: import a file with a progress bar and print a summary.

Exit status 0 when the import finished, 1 when a strict import refused the file because of bad rows.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from siyu.core.db import get_database
from siyu.core.errors import ValidationFailed
from siyu.ingest import service
from siyu.ingest.schemas import ImportKind
from siyu.workspaces import service as workspaces

import_app = typer.Typer(
    help="Import customers, orders or events from CSV, Excel (.xlsx) or JSONL.", no_args_is_help=True
)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`COL=FIELD` pairs → mapping overrides (an empty FIELD ignores the column)."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip():
            raise ValidationFailed(
                f"--map {pair!r} is not COLUMN=FIELD", where="--map", hint="e.g. --map 手机号=phone"
            )
        overrides[column.strip()] = target.strip()
    return overrides


def _workspace_id(slug: str | None) -> int:
    with get_database().reader() as session:
        return workspaces.workspace_for_command(session, slug=slug).id


def run_import(
    kind: ImportKind,
    file: Path,
    mapping: list[str],
    strict: bool,
    workspace: str | None,
    reject_file: Path | None,
) -> None:
    database = get_database()
    workspace_id = _workspace_id(workspace)
    overrides = parse_overrides(mapping)
    with Progress(
        TextColumn(f"importing {file.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("import", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        job = service.import_file(
            database,
            workspace_id=workspace_id,
            kind=kind,
            path=file,
            mapping_overrides=overrides,
            strict=strict,
            source="cli",
            reject_file=reject_file,
            progress=advance,
        )
    typer.echo(
        f"import {job.id} ({kind.value}, {job.filename}): {job.status} — "
        f"inserted {job.inserted_rows}, updated {job.updated_rows}, unchanged {job.unchanged_rows}, "
        f"rejected {job.rejected_rows} of {job.total_rows} rows"
    )
    if job.rejected_rows:
        typer.echo(f"rejected rows: {reject_file or service.default_reject_path(job.id)}")
    if job.status != "done":
        typer.echo(job.error or "nothing was written", err=True)
        raise typer.Exit(1)


def _command(kind: ImportKind) -> None:
    def command(
        file: Path = typer.Argument(
            ..., exists=True, dir_okay=False, readable=True, help="CSV, .xlsx or JSONL file."
        ),
        mapping: list[str] = typer.Option(
            [], "--map", help="COLUMN=FIELD: map a column to a field (repeatable; empty FIELD ignores it)."
        ),
        strict: bool = typer.Option(False, "--strict", help="Write nothing if any row is rejected."),
        workspace: str | None = typer.Option(
            None, "--workspace", help="Workspace slug (default: the only one)."
        ),
        reject_file: Path | None = typer.Option(
            None, "--reject-file", help="Where to write the rejected rows."
        ),
    ) -> None:
        run_import(kind, file, mapping, strict, workspace, reject_file)

    command.__doc__ = f"Import {kind.value} from FILE."
    import_app.command(kind.value)(command)


for _kind in ImportKind:
    _command(_kind)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
