"""Live codes in and out of the JSON API (and the page forms, which build the same `LiveCodeIn`)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field, computed_field

from siyu.livecodes.assignment import Strategy


class StaffIn(BaseModel):
    user_id: int
    weight: int = Field(1, description="Relative share of scans (weighted and random strategies), 1–100.")
    daily_cap: int | None = Field(None, description="At most this many scans a day (workspace calendar).")
    is_backup: bool = Field(False, description="Takes scans only when no primary member is available.")
    is_online: bool = True
    weekdays: str = Field("1234567", description='ISO weekdays on duty, e.g. "12345" for Monday–Friday.')
    hours: str | None = Field(None, description='Working hours in the workspace zone, "09:00-18:00".')
    contact_qr_url: str | None = Field(None, description="The member's WeCom contact QR for this code.")


class LiveCodeIn(BaseModel):
    name: str
    placement: str = Field(description="store_table, poster, parcel_insert, ad, event or other.")
    channel_id: int | None = Field(None, description="A WeCom live-code channel; none: the default one.")
    store_id: int | None = None
    strategy: Strategy = Strategy.ROUND_ROBIN
    staff: list[StaffIn]
    auto_tag_ids: list[int] = []
    welcome_text: str = ""
    cost_cents: int = 0
    wecom_remark: str = Field(
        "", description="Remark of the staff members' WeCom contact ways, ≤ 30 characters."
    )
    wecom_skip_verify: bool = Field(True, description="Customers add the member without their approval.")


class StaffOut(StaffIn):
    display_name: str
    wecom_status: str = Field(description="synced, off, pending or failed (docs/livecodes.md).")
    wecom_error: str | None = None
    wecom_qr_url: str | None = Field(None, description="The QR of the member's synced WeCom contact way.")


class LiveCodeOut(BaseModel):
    id: int
    name: str
    placement: str
    channel_id: int
    store_id: int | None
    strategy: str
    state: str
    landing_path: str
    is_active: bool
    auto_tag_ids: list[int]
    welcome_text: str
    cost_cents: int
    wecom_remark: str
    wecom_skip_verify: bool
    staff: list[StaffOut]
    created_at: datetime


class OnlineIn(BaseModel):
    online: bool


class ActiveIn(BaseModel):
    active: bool


class Figures(BaseModel):
    """Counts of one code (or one staff member, or one day) over a period; definitions in
    docs/livecodes.md."""

    scans: int = 0
    scanners: int = 0
    new_adds: int = 0
    returning_adds: int = 0
    deletions: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def adds(self) -> int:
        return self.new_adds + self.returning_adds

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pass_through_rate(self) -> float | None:
        return self.new_adds / self.scanners if self.scanners else None


class DayFigures(Figures):
    day: date


class StaffFigures(Figures):
    user_id: int | None
    display_name: str


class LiveCodeStats(BaseModel):
    live_code_id: int
    start: date
    end: date
    totals: Figures
    cost_cents: int
    cost_per_new_customer_cents: int | None = Field(
        description="The code's cost over its new customers of all time (none before the first)."
    )
    days: list[DayFigures]
    staff: list[StaffFigures]


class AddOut(BaseModel):
    id: int
    customer_id: int
    staff_user_id: int | None
    staff_name: str
    external_userid: str
    is_new_customer: bool
    added_at: datetime
    deleted_at: datetime | None
    welcome_status: str
