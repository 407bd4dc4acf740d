"""Chunks of a file read in pieces, arranged so that the rows of one order always load together.

An order's rows are usually next to each other, but they may straddle a chunk border or lie far apart.
A first pass over the order-number column finds the orders whose rows fall in more than one chunk;
while the rows stream, those rows are held back until the chunk of the order's last row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl

from siyu.ingest.reading import ROW_NUMBER, TableStream, chunk_of

_HASH = "_order_hash"
_LAST = "_order_last_chunk"


def _order_key(column: str) -> pl.Expr:
    """The order number as validation reads it (trimmed, empty = none), hashed: held compactly, and a
    collision only keeps two orders' rows together, which costs nothing."""
    text = pl.col(column).str.strip_chars()
    return pl.when(text != "").then(text).hash(seed=7).alias(_HASH)


@dataclass
class FilePlan:
    """What the first pass learnt: the file's rows (empty ones included) and the orders that span chunks."""

    rows: int = 0
    spanning: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema={_HASH: pl.UInt64, _LAST: pl.Int64})
    )


def plan(stream: TableStream, *, order_column: str | None, chunk_rows: int) -> FilePlan:
    """Count the rows and, given the column holding order numbers, find the orders whose rows fall in
    more than one chunk of `chunk_rows` rows and the chunk of their last row. Memory: one block of the
    column, and one hash and chunk number per order and chunk it appears in."""
    result = FilePlan()
    column = order_column or stream.columns[0]
    seen: list[pl.DataFrame] = []
    for block in stream.column(column):
        result.rows += block.height
        if order_column is not None:
            seen.append(
                block.select(
                    _order_key(column), chunk_of(pl.col(ROW_NUMBER), chunk_rows).cast(pl.Int32).alias(_LAST)
                )
                .drop_nulls(_HASH)
                .unique()
            )
    if seen:
        # sorted rather than grouped: the sort needs a copy of the pairs, a hash table several times more
        pairs = pl.concat(seen).sort(_HASH, _LAST)
        repeated = pl.col(_HASH).eq_missing(pl.col(_HASH).shift(1)) | pl.col(_HASH).eq_missing(
            pl.col(_HASH).shift(-1)
        )
        result.spanning = (
            pairs.filter(repeated)
            .group_by(_HASH)
            .agg(pl.col(_LAST).min().alias("_first"), pl.col(_LAST).max())
            # a pair can repeat when two blocks of one chunk both hold the order
            .filter(pl.col("_first") != pl.col(_LAST))
            .select(_HASH, pl.col(_LAST).cast(pl.Int64))
        )
    return result


def order_chunks(
    chunks: Iterator[pl.DataFrame], *, order_column: str, spanning: pl.DataFrame, chunk_rows: int
) -> Iterator[pl.DataFrame]:
    """`chunks` with the rows of every spanning order moved to the chunk of its last row (before that
    chunk's own rows, so an order's rows stay in file order). Without spanning orders, `chunks` as is."""
    if spanning.height == 0:
        yield from chunks
        return
    held: pl.DataFrame | None = None
    for chunk in chunks:
        number = chunk.select(chunk_of(pl.col(ROW_NUMBER).first(), chunk_rows)).item()
        tagged = chunk.with_columns(_order_key(order_column)).join(
            spanning, on=_HASH, how="left", maintain_order="left"
        )
        later = pl.col(_LAST).fill_null(number) > number
        parts = [] if held is None else [held.filter(pl.col(_LAST) <= number)]
        parts.append(tagged.filter(~later))
        waiting = tagged.filter(later)
        held = waiting if held is None else pl.concat([held.filter(pl.col(_LAST) > number), waiting])
        out = pl.concat(parts).drop(_HASH, _LAST)
        if out.height:
            yield out
    if held is not None and held.height:
        yield held.drop(_HASH, _LAST)
