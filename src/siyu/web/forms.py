"""What the server-rendered pages share to read a submitted form: the `Form` dependency (the whole form,
whose field names may depend on the workspace's data) and the text of one field."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def form_text(form: FormData, name: str) -> str:
    """The field's text, stripped; "" when it is missing or a file."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
