"""The journey page's flow drawing: the steps laid out as the graph they form (one row per depth, the
branches of a condition, split or wait side by side and joined again where they meet), with the counts
of each step, in SVG coordinates for the template."""

from __future__ import annotations

from dataclasses import dataclass

from siyu.journeys import service
from siyu.journeys.definition import Definition

BOX_W, BOX_H, ROW_GAP, COL_GAP, MARGIN = 230, 58, 44, 36, 20


@dataclass
class Box:
    step_id: str
    kind: str
    label: str
    at_step: int
    passed: int
    x: int
    y: int


@dataclass
class Edge:
    path: str
    side: bool  # drawn round the side of the boxes in between (a jump down its own column)
    label: str  # the branch: then / else / event / timeout / holdout, or a variant's name; "" for none
    label_x: int
    label_y: int


@dataclass
class Flow:
    boxes: list[Box]
    edges: list[Edge]
    width: int
    height: int
    entry_x: int  # where the trigger's box stands (above the first step)


def branch_targets(definition: Definition, step_id: str) -> list[tuple[str, str]]:
    """(branch, target) of every way out of a step, in the order the builder shows its branches."""
    step = definition.steps[step_id]
    kind = step["kind"]
    if kind == "exit":
        found: list[tuple[str, str | None]] = []
    elif kind == "condition":
        found = [("then", step.get("then")), ("else", step.get("else"))]
    elif kind == "split":
        found = [(str(name), target) for name, target in step["branches"].items()]
        found.append(("holdout", step.get("holdout")))
    elif kind == "wait_event":
        found = [("event", definition.next_of(step_id)), ("timeout", step.get("timeout_next"))]
    else:
        found = [("", definition.next_of(step_id))]
    return [(branch, target) for branch, target in found if target]


def _topological(order: list[str], targets: dict[str, list[str]]) -> list[str]:
    incoming = {step_id: 0 for step_id in order}
    for outs in targets.values():
        for target in outs:
            incoming[target] += 1
    ready = [s for s in order if incoming[s] == 0]
    result: list[str] = []
    while ready:
        step_id = ready.pop(0)
        result.append(step_id)
        for target in targets[step_id]:
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    return result


def layout(figures: service.JourneyFigures) -> Flow:
    """Rows by the longest way from the entry (a step stands below every step leading to it), columns by
    branch: a step's n-th way out goes n columns right of it, a step where branches meet under the
    leftmost of them."""
    definition = figures.definition
    order = definition.order
    labelled = {step_id: branch_targets(definition, step_id) for step_id in order}
    targets = {step_id: list(dict.fromkeys(t for _, t in outs)) for step_id, outs in labelled.items()}
    sequence = _topological(order, targets)  # the steps form no cycle (definition.py checks it)
    row: dict[str, int] = {step_id: 0 for step_id in order}
    for step_id in sequence:
        for target in targets[step_id]:
            row[target] = max(row[target], row[step_id] + 1)
    column: dict[str, int] = {}
    taken: set[tuple[int, int]] = set()
    parents: dict[str, list[tuple[str, int]]] = {step_id: [] for step_id in order}
    for step_id in order:
        for rank, target in enumerate(targets[step_id]):
            parents[target].append((step_id, rank))
    for step_id in sequence:
        wanted = min((column[p] + rank for p, rank in parents[step_id] if p in column), default=0)
        while (row[step_id], wanted) in taken:
            wanted += 1
        column[step_id] = wanted
        taken.add((row[step_id], wanted))

    def x_of(step_id: str) -> int:
        return MARGIN + column[step_id] * (BOX_W + COL_GAP)

    def y_of(step_id: str) -> int:  # row 0 holds the trigger
        return MARGIN + (row[step_id] + 1) * (BOX_H + ROW_GAP)

    figures_of = {s.step_id: s for s in figures.steps}
    boxes = [
        Box(
            step_id,
            figures_of[step_id].kind,
            figures_of[step_id].label,
            figures_of[step_id].at_step,
            figures_of[step_id].passed,
            x_of(step_id),
            y_of(step_id),
        )
        for step_id in order
    ]
    edges = []
    for step_id in order:
        x1, y1 = x_of(step_id) + BOX_W // 2, y_of(step_id) + BOX_H
        for rank, (branch, target) in enumerate(labelled[step_id]):
            x2, y2 = x_of(target) + BOX_W // 2, y_of(target)
            between = range(row[step_id] + 1, row[target])
            if column[target] == column[step_id] and any((r, column[step_id]) in taken for r in between):
                right = x_of(step_id) + BOX_W
                reach = 30 + 16 * rank
                mid1, mid2 = y_of(step_id) + BOX_H // 2, y2 + BOX_H // 2
                path = f"M{right},{mid1} C{right + reach},{mid1} {right + reach},{mid2} {right},{mid2}"
                edges.append(Edge(path, True, branch, right + reach // 2, mid1 - 4))
                continue
            bend = ROW_GAP // 2 + 6
            path = f"M{x1},{y1} C{x1},{y1 + bend} {x2},{y2 - bend} {x2},{y2}"
            label_x = x1 + (x2 - x1) // 4 + 4
            edges.append(Edge(path, False, branch, label_x, y1 + 14))
    columns = max(column.values(), default=0) + 1
    rows = max(row.values(), default=0) + 2
    width = MARGIN * 2 + columns * BOX_W + (columns - 1) * COL_GAP + 60
    height = MARGIN * 2 + rows * (BOX_H + ROW_GAP)
    entry_x = x_of(order[0]) if order else MARGIN
    return Flow(boxes, edges, max(width, 2 * BOX_W + COL_GAP + 2 * MARGIN), height, entry_x)
