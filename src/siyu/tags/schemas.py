"""Pydantic shapes of tags: groups with their tags, a customer's tags, bulk tagging requests and results."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from siyu.tags.models import TagSource


class TagGroupIn(BaseModel):
    name: str = Field(description="Unique in the workspace, e.g. 会员等级.")


class TagIn(BaseModel):
    name: str = Field(description="Unique in its group, e.g. VIP. May not contain '/'.")


class TagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    group_id: int
    name: str
    created_at: datetime


class TagGroupOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    tags: list[TagOut]


class CustomerTagOut(BaseModel):
    """A tag one customer carries, and where it came from."""

    tag_id: int
    group: str
    name: str
    source: TagSource
    source_ref: str | None
    actor_user_id: int | None
    tagged_at: datetime


class BulkTagIn(BaseModel):
    """Whom to tag or untag: customer ids, or identity values of one kind (an imported list of phones…)."""

    customer_ids: list[int] | None = None
    identity_kind: str | None = Field(None, description="With `values`: e.g. phone, shop_member_id.")
    values: list[str] | None = Field(None, description="Identity values, e.g. phones in any spelling.")

    @model_validator(mode="after")
    def _one_way(self) -> BulkTagIn:
        if (self.customer_ids is None) == (self.values is None):
            raise ValueError("give either customer_ids or identity_kind with values")
        if self.values is not None and not self.identity_kind:
            raise ValueError("values need their identity_kind (e.g. phone)")
        return self


class BulkTagResult(BaseModel):
    """What a bulk tag or untag did: `changed` customers gained (or lost) the tag, `unchanged` had it
    already (or did not have it); `not_found` lists the ids or values that name no visible customer."""

    tag_id: int
    changed: int
    unchanged: int
    not_found: list[str] = Field(default_factory=list)


class TagCount(BaseModel):
    """How many customers (that the reader may see) carry a tag, in all and per source."""

    tag_id: int
    customers: int
    by_source: dict[str, int]


class TagRename(BaseModel):
    name: str = Field(description="The new name; may not contain '/'.")


class TagImpact(BaseModel):
    """What a deletion would touch: customers carrying the tag(s), segments naming them (which refuse it)."""

    customers: int
    segments: list[str]


class TagDeleted(BaseModel):
    """What a deletion did: how many customers lost the tag (or a tag of the group)."""

    customers: int


class RowReject(BaseModel):
    row: int
    value: str
    code: str = Field(description="empty, repeated or not_found")
    reason: str


class IdentityListResult(BaseModel):
    """A bulk tag or untag from an uploaded list: what it did, and each row that named nobody or could
    not be read, with its row number (1 = the first line after the header)."""

    result: BulkTagResult
    kind: str
    rows: int
    rejects: list[RowReject]
