"""Pydantic shapes of channels, channel costs and stores, in and out of the JSON API.

Services return the ORM rows; the API validates them into these models.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from siyu.channels.models import SourceType


class ChannelIn(BaseModel):
    key: str = Field(description="Stable code used in files, e.g. 'douyin' or 'store-sh-01'.")
    name: str
    source_type: SourceType
    aliases: list[str] = Field(
        default_factory=list, description="Other spellings found in files (抖音, dy…)."
    )


class ChannelUpdate(BaseModel):
    name: str | None = None
    source_type: SourceType | None = None
    aliases: list[str] | None = None


class ChannelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    name: str
    source_type: str
    aliases: list[str]
    created_at: datetime
    archived_at: datetime | None

    @field_validator("aliases", mode="before")
    @classmethod
    def _split_aliases(cls, value: object) -> object:
        if isinstance(value, str):
            return [a for a in value.split("|") if a]
        return value


class CostIn(BaseModel):
    period_start: date
    period_end: date = Field(description="Inclusive.")
    amount_cents: int
    currency: str = "CNY"
    note: str = ""


class CostOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel_id: int
    period_start: date
    period_end: date
    amount_cents: int
    currency: str
    note: str


class ChannelCostTotal(BaseModel):
    """Cost of one channel within a date range, pro rata for periods that straddle its edges."""

    channel_id: int
    channel_key: str
    channel_name: str
    cost_cents: int


class StoreIn(BaseModel):
    code: str
    name: str
    city: str = ""
    address: str = ""
    latitude: float | None = None
    longitude: float | None = None


class StoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    city: str
    address: str
    latitude: float | None
    longitude: float | None
