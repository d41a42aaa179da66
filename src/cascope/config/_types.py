"""Field types shared by the configurations."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: A size in planes, pixels or voxels: at least 1.
Size = Annotated[int, Field(ge=1)]

#: A (T|Z, Y, X) size (a patch, a tile, a window): every entry at least 1.
Size3 = tuple[Size, Size, Size]
