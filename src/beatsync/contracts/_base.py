from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base of every contract model: unknown fields are errors, instances are immutable, and
    the JSON Schema pydantic generates lists defaulted fields as required (they are always
    serialised), as the files in ``schemas/`` do."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)
