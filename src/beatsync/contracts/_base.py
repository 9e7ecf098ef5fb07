from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base of every contract model: unknown fields are errors, instances are immutable, and
    the JSON Schema pydantic generates lists defaulted fields as required (they are always
    serialised), as the files in ``schemas/`` do."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


def describe_validation_error(exc: Exception, names: dict[str, str] | None = None) -> str:
    """A pydantic ``ValidationError`` as one line a person reads: ``field value: problem`` for each
    error (no pydantic banner, no documentation URL); ``names`` renames fields (CLI flags)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for err in errors(include_url=False):
        field = ".".join(str(p) for p in err.get("loc", ())) or "value"
        label = (names or {}).get(field, field)
        value = err.get("input")
        shown = f" {value}" if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""
        msg = err.get("msg", "invalid")
        ctx = err.get("ctx") or {}
        if "expected" in ctx:
            msg = f"expected {ctx['expected']}"
        parts.append(f"{label}{shown}: {msg}")
    return "; ".join(parts)
