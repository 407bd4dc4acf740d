"""Builds the demo workspace: the brand's staff, channels with costs and stores, then its generated files.

The files go through the same import path users take (`siyu.ingest.service.import_file`), so the demo
also shows header auto-mapping, identity resolution, merges and the reject report at work.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from siyu.auth import service as auth
from siyu.auth.models import Role
from siyu.channels import service as channels
from siyu.core.db import Database
from siyu.core.errors import Conflict, NotFound, ValidationFailed
from siyu.demo import audiences, engagement, generator, outreach
from siyu.demo.generator import DemoFiles
from siyu.ingest import service as ingest
from siyu.ingest.schemas import ImportKind
from siyu.workspaces import service as workspaces

DEFAULT_SLUG = "demo"
DEMO_PASSWORD = "chashanji-demo"  # printed by `siyu demo`: a demo is meant to be logged into
IMPORT_SOURCE = "demo"
# Import order matters: members first (they carry owners and consent), then orders, then events (the
# phone-binding events link the people the mini program knew only by unionid).
IMPORT_ORDER: tuple[tuple[ImportKind, str], ...] = (
    (ImportKind.CUSTOMERS, generator.CUSTOMERS_FILE),
    (ImportKind.ORDERS, generator.ORDERS_FILE),
    (ImportKind.EVENTS, generator.EVENTS_FILE),
)

Report = Callable[[str], None]


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str
    display_name: str
    city: str


@dataclass(frozen=True)
class ImportSummary:
    kind: str
    job_id: int
    status: str
    total_rows: int
    inserted_rows: int
    updated_rows: int
    rejected_rows: int
    seconds: float


@dataclass
class DemoBuild:
    """A demo workspace ready to use: how to log in, and (when just built) what was loaded and how fast."""

    workspace_id: int
    slug: str
    reused: bool
    logins: list[DemoLogin]
    api_token: str
    files: DemoFiles | None = None
    imports: list[ImportSummary] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time
    engagement: engagement.Engagement | None = None
    outreach: outreach.Outreach | None = None
    audiences: audiences.Audiences | None = None

    @property
    def owner(self) -> DemoLogin:
        return next(login for login in self.logins if login.role == Role.OWNER.value)

    @property
    def staff(self) -> DemoLogin:
        return next(login for login in self.logins if login.role == Role.STAFF.value)


def email_domain_for(slug: str) -> str:
    """Staff logins of the demo workspace `slug` live at @<slug>.siyu.local (demo → owner@demo.siyu.local)."""
    return f"{slug}.siyu.local"


def demo_logins(slug: str, password: str = DEMO_PASSWORD) -> list[DemoLogin]:
    domain = email_domain_for(slug)
    return [DemoLogin(s.email(domain), password, s.role, s.display_name, s.city) for s in generator.STAFF]


def find_demo(db: Database, *, slug: str = DEFAULT_SLUG) -> int | None:
    """The id of a completely built demo workspace `slug`, None if there is none.

    A workspace `slug` whose three demo imports did not all finish is refused: rebuild it.
    """
    with db.reader() as session:
        try:
            workspace = workspaces.get_workspace_by_slug(session, slug=slug)
        except NotFound:
            return None
        done = {
            job.kind
            for job in ingest.list_jobs(session, workspace_id=workspace.id)
            if job.source == IMPORT_SOURCE and job.status == "done"
        }
    if done != {kind.value for kind, _ in IMPORT_ORDER}:
        raise Conflict(
            f"workspace {slug!r} exists but is not a complete demo (finished imports: {sorted(done) or 'none'})",
            where="slug",
            hint="rebuild it: `siyu demo --rebuild` (SQLite file), or pick another --slug",
        )
    return workspace.id


def open_demo(db: Database, *, slug: str = DEFAULT_SLUG, password: str = DEMO_PASSWORD) -> DemoBuild:
    """Reuse a built demo: checks the owner's demo password and issues a fresh API token to try the API."""
    workspace_id = find_demo(db, slug=slug)
    if workspace_id is None:
        raise NotFound(f"there is no demo workspace {slug!r}", where="slug", hint="build it with `siyu demo`")
    logins = demo_logins(slug, password)
    owner = next(login for login in logins if login.role == Role.OWNER.value)
    with db.transaction() as session:
        user = auth.authenticate(session, email=owner.email, password=password)
        token, _ = auth.create_api_token(
            session, workspace_id=workspace_id, user_id=user.id, name="demo (curl)"
        )
    return DemoBuild(workspace_id=workspace_id, slug=slug, reused=True, logins=logins, api_token=token)


def _setup_workspace(
    db: Database, *, slug: str, customers: int, seed: int, password: str
) -> tuple[int, int, str, list[DemoLogin]]:
    """Workspace, staff logins, channels with monthly costs and stores, in one transaction."""
    logins = demo_logins(slug, password)
    with db.transaction() as session:
        workspace = workspaces.create_workspace(
            session,
            slug=slug,
            name=generator.BRAND_NAME,
            timezone=generator.TIMEZONE,
            currency=generator.CURRENCY,
        )
        owner_id = 0
        for login in logins:
            user = auth.create_user(
                session, email=login.email, password=password, display_name=login.display_name
            )
            auth.add_member(session, workspace_id=workspace.id, user_id=user.id, role=Role(login.role))
            if login.role == Role.OWNER.value:
                owner_id = user.id
        channel_ids: dict[str, int] = {}
        for spec in generator.CHANNELS:
            channel = channels.create_channel(
                session,
                workspace_id=workspace.id,
                key=spec.key,
                name=spec.name,
                source_type=spec.source_type,
                aliases=spec.aliases,
                actor_user_id=owner_id,
            )
            channel_ids[spec.key] = channel.id
        for cost in generator.channel_costs(customers=customers, seed=seed):
            channels.add_cost(
                session,
                workspace_id=workspace.id,
                channel_id=channel_ids[cost.channel_key],
                period_start=cost.period_start,
                period_end=cost.period_end,
                amount_cents=cost.amount_cents,
                currency=generator.CURRENCY,
                note="demo: monthly spend",
                actor_user_id=owner_id,
            )
        for store in generator.STORES:
            channels.create_store(
                session,
                workspace_id=workspace.id,
                code=store.code,
                name=store.name,
                city=store.city,
                address=store.address,
                latitude=store.latitude,
                longitude=store.longitude,
                actor_user_id=owner_id,
            )
        token, _ = auth.create_api_token(
            session, workspace_id=workspace.id, user_id=owner_id, name="demo (curl)"
        )
        return workspace.id, owner_id, token, logins


def build_demo(
    db: Database,
    *,
    directory: Path,
    customers: int = 50_000,
    seed: int = 7,
    slug: str = DEFAULT_SLUG,
    password: str = DEMO_PASSWORD,
    report: Report | None = None,
    repeat_scale: float = 1.0,
    orders_per_import: int | None = None,
) -> DemoBuild:
    """Create the demo workspace `slug`, generate the brand's files into `directory` and import them.

    Refuses (Conflict) when the workspace or one of its logins (@<slug>.siyu.local) exists already. Each
    import is its own job with a reject report in `directory`; an import that fails raises.
    `orders_per_import` splits orders.csv into files of at most that many rows (an order's lines stay
    together), imported one after another: the importer holds a whole file in memory, and the
    benchmarks' 19M order lines would not fit.
    """
    if customers < 50:
        raise ValidationFailed(
            f"{customers} customers is too few for the demo brand", where="customers", hint="use 50 or more"
        )
    say = report or (lambda _message: None)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    workspace_id, owner_id, token, logins = _setup_workspace(
        db, slug=slug, customers=customers, seed=seed, password=password
    )
    seconds["setup"] = time.perf_counter() - started
    say(
        f"workspace {slug!r}: {len(logins)} staff, {len(generator.CHANNELS)} channels, {len(generator.STORES)} stores"
    )

    step = time.perf_counter()
    files = generator.generate(
        directory,
        customers=customers,
        seed=seed,
        email_domain=email_domain_for(slug),
        repeat_scale=repeat_scale,
    )
    seconds["generate"] = time.perf_counter() - step
    say(
        f"generated {files.persons} people, {files.orders} orders ({files.order_rows} lines), "
        f"{files.events} events in {seconds['generate']:.1f}s"
    )

    imports: list[ImportSummary] = []
    plan: list[tuple[ImportKind, str]] = []
    for kind, filename in IMPORT_ORDER:
        if kind == ImportKind.ORDERS and orders_per_import:
            plan += [(kind, part.name) for part in _split_csv(directory / filename, rows=orders_per_import)]
        else:
            plan.append((kind, filename))
    for kind, filename in plan:
        step = time.perf_counter()
        job = ingest.import_file(
            db,
            workspace_id=workspace_id,
            kind=kind,
            path=directory / filename,
            actor_user_id=owner_id,
            source=IMPORT_SOURCE,
            reject_file=directory / f"{Path(filename).stem}-rejects.csv",
        )
        elapsed = time.perf_counter() - step
        seconds[f"import {kind.value}"] = seconds.get(f"import {kind.value}", 0.0) + elapsed
        summary = ImportSummary(
            kind=kind.value,
            job_id=job.id,
            status=job.status,
            total_rows=job.total_rows,
            inserted_rows=job.inserted_rows,
            updated_rows=job.updated_rows,
            rejected_rows=job.rejected_rows,
            seconds=elapsed,
        )
        imports.append(summary)
        say(
            f"imported {filename}: {job.status}, {job.total_rows} rows, {job.rejected_rows} rejected "
            f"in {elapsed:.1f}s"
        )
        if job.status != "done":
            raise Conflict(
                f"the demo import of {filename} ended {job.status}: {job.error or 'no reason given'}",
                where=str(directory / filename),
                hint="see the reject report next to the file",
            )
    step = time.perf_counter()
    assert files.wecom_friends_csv is not None
    with db.transaction() as session:
        friends = engagement.record_wecom_friends(
            session, workspace_id=workspace_id, path=files.wecom_friends_csv, owner_user_id=owner_id
        )
    seconds["wecom friends"] = time.perf_counter() - step
    say(
        f"WeCom friendships: {friends} ({files.ended_friendships} since ended) "
        f"in {seconds['wecom friends']:.1f}s"
    )
    step = time.perf_counter()
    with db.transaction() as session:
        engaged = engagement.build(session, workspace_id=workspace_id, owner_user_id=owner_id, seed=seed)
    seconds["engagement"] = time.perf_counter() - step
    say(
        f"engagement: {engaged.live_codes} live codes ({engaged.scans} scans, {engaged.adds} adds), "
        f"{engaged.coupons_issued} coupons issued ({engaged.coupons_redeemed} redeemed), points for "
        f"{engaged.points_members} members, {engaged.groups} customer groups ({engaged.group_members} members) "
        f"in {seconds['engagement']:.1f}s"
    )
    step = time.perf_counter()
    with db.transaction() as session:
        owner = auth.actor_for(session, user_id=owner_id, workspace_id=workspace_id, via="cli")
        reached = outreach.build(session, owner=owner)
    seconds["outreach"] = time.perf_counter() - step
    say(
        f"outreach: {reached.templates} message templates, {reached.snippets} snippets, "
        f"{reached.referral_invites} referral invites, {reached.journeys} live SOP journey, a broadcast to "
        f"{reached.broadcast_audience} customers in {seconds['outreach']:.1f}s"
    )
    step = time.perf_counter()
    with db.transaction() as session:
        owner = auth.actor_for(session, user_id=owner_id, workspace_id=workspace_id, via="cli")
        understood = audiences.build(session, owner=owner)
    seconds["audiences"] = time.perf_counter() - step
    say(
        f"understood at {generator.ANCHOR_DATE}: RFM for {understood.rfm_scored} buyers, lifecycle stages of "
        f"{understood.stages} customers, predicted value of {understood.clv_scored}; "
        f"{len(understood.segments)} segments ("
        + ", ".join(f"{name} {size}" for name, size in understood.segments.items())
        + f") in {seconds['audiences']:.1f}s"
    )
    seconds["total"] = time.perf_counter() - started
    return DemoBuild(
        workspace_id=workspace_id,
        slug=slug,
        reused=False,
        logins=logins,
        api_token=token,
        files=files,
        imports=imports,
        seconds=seconds,
        engagement=engaged,
        outreach=reached,
        audiences=understood,
    )


def _split_csv(path: Path, *, rows: int) -> list[Path]:
    """`path` cut into files of at most `rows` data rows each (the header repeated), never between two
    rows of one order (rows of an order are adjacent and share the first column, 订单号)."""
    parts: list[Path] = []
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        header = next(reader)
        out = None
        writer = None
        count = 0
        previous = None
        for row in reader:
            if writer is None or (count >= rows and row[0] != previous):
                if out is not None:
                    out.close()
                parts.append(path.with_name(f"{path.stem}-{len(parts) + 1:02d}{path.suffix}"))
                out = parts[-1].open("w", encoding="utf-8", newline="")
                writer = csv.writer(out)
                writer.writerow(header)
                count = 0
            writer.writerow(row)
            count += 1
            previous = row[0]
        if out is not None:
            out.close()
    return parts
