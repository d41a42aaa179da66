"""magicgui forms generated from pydantic configs, so every option is declared once.

A field becomes a widget by its type: ``Literal`` a combo box, ``bool`` a check box, ``int`` /
``float`` a spin box with the field's bounds, anything else (optional numbers, tuples) a line
edit whose text pydantic parses. The description is the tooltip. Reading the form back validates
it with the model itself.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

import annotated_types as at
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, LineEdit, SpinBox
from pydantic import BaseModel
from pydantic.fields import FieldInfo

_BIG = 1e9


def _bounds(info: FieldInfo) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in info.metadata:
        if isinstance(m, at.Ge):
            out["min"] = float(m.ge)  # type: ignore[arg-type]
        elif isinstance(m, at.Gt):
            out["min"] = float(m.gt)  # type: ignore[arg-type]
        elif isinstance(m, at.Le):
            out["max"] = float(m.le)  # type: ignore[arg-type]
        elif isinstance(m, at.Lt):
            out["max"] = float(m.lt)  # type: ignore[arg-type]
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    return str(value)


def field_widget(name: str, info: FieldInfo, value: Any) -> Any:
    """Make the widget of one pydantic field, showing ``value``."""
    ann = info.annotation
    tip = info.description or ""
    label = name.replace("_", " ")
    common: dict[str, Any] = {"name": name, "label": label, "tooltip": tip}
    if typing.get_origin(ann) is Literal:
        return ComboBox(choices=list(typing.get_args(ann)), value=value, **common)
    if ann is bool:
        return CheckBox(value=bool(value), **common)
    if ann is int or ann is float:
        b = _bounds(info)
        step = 1 if ann is int else 0.05
        lo = b.get("min", -_BIG)
        hi = b.get("max", _BIG)
        if ann is int:
            return SpinBox(value=int(value), min=int(lo), max=int(min(hi, 2**31 - 1)), **common)
        return FloatSpinBox(value=float(value), min=lo, max=hi, step=step, **common)
    return LineEdit(value=_text(value), **common)


def _parse(widget: Any) -> Any:
    if not isinstance(widget, LineEdit):
        return widget.value
    text = str(widget.value).strip()
    if not text or text.lower() == "none":
        return None
    if "," in text:
        return [p.strip() for p in text.split(",")]
    return text


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _nested_model(ann: Any) -> type[BaseModel] | None:
    if _is_model(ann):
        return typing.cast(type[BaseModel], ann)
    if isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union:
        models = [a for a in typing.get_args(ann) if _is_model(a)]
        if len(models) == 1:
            return typing.cast(type[BaseModel], models[0])
    return None


class ConfigForm(Container):
    """A form for a pydantic model; :meth:`config` returns the validated model.

    Parameters
    ----------
    model : type of BaseModel
        The configuration class.
    fields : sequence of str, optional
        Fields to show, in order (default: every field). Nested models appear as
        ``"training.steps"``.
    defaults : dict, optional
        Starting values that differ from the model's defaults (e.g. a short training).
    label : str, optional
        Title shown above the form.
    """

    def __init__(
        self,
        model: type[BaseModel],
        *,
        fields: typing.Sequence[str] | None = None,
        defaults: dict[str, Any] | None = None,
        label: str = "",
    ) -> None:
        self.model = model
        base = model.model_validate(defaults or {})
        names = list(fields) if fields is not None else list(model.model_fields)
        widgets = []
        for dotted in names:
            info, value = _lookup(model, base, dotted)
            w = field_widget(dotted.replace(".", "__"), info, value)
            w.label = dotted.split(".")[-1].replace("_", " ")
            widgets.append(w)
        self._dotted = names
        self._defaults = base.model_dump()
        super().__init__(widgets=widgets, label=label)

    def values(self) -> dict[str, Any]:
        """Collect the raw form values, nested like the model, over the starting defaults."""
        out: dict[str, Any] = dict(self._defaults)
        for dotted in self._dotted:
            widget = self[dotted.replace(".", "__")]
            target = out
            parts = dotted.split(".")
            for part in parts[:-1]:
                target[part] = dict(target.get(part) or {})
                target = target[part]
            target[parts[-1]] = _parse(widget)
        return out

    def config(self) -> Any:
        """Validate the form with the model (raises pydantic's ValidationError)."""
        return self.model.model_validate(self.values())


def _lookup(model: type[BaseModel], base: BaseModel, dotted: str) -> tuple[FieldInfo, Any]:
    parts = dotted.split(".")
    cls: type[BaseModel] = model
    obj: Any = base
    for part in parts[:-1]:
        nested = _nested_model(cls.model_fields[part].annotation)
        if nested is None:
            raise ValueError(f"{dotted!r}: {part!r} is not a nested model")
        cls = nested
        obj = getattr(obj, part, None)
    info = cls.model_fields[parts[-1]]
    return info, getattr(obj, parts[-1], info.default) if obj is not None else info.default
