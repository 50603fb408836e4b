"""OpenAPI 3.1 generated from the same pydantic models that validate requests.

Route modules describe each operation once with `SPEC.operation(...)`; `/openapi.json` serves
the result, and schemathesis checks the server against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "title", "status"],
}


@dataclass
class OpenApiSpec:
    title: str = "capmon API"
    version: str = "1"
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    schemas: dict[str, Any] = field(default_factory=lambda: {"Problem": PROBLEM_SCHEMA})

    def schema_ref(self, model: type[BaseModel]) -> dict[str, Any]:
        # Described once: a later operation on the same model keeps what `replace_property`
        # made of it.
        if model.__name__ not in self.schemas:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                self.schemas.setdefault(name, sub)
            self.schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def operation(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tags: tuple[str, ...] = (),
        request: type[BaseModel] | None = None,
        form: dict[str, Any] | None = None,
        responses: dict[int, type[BaseModel] | dict[str, Any] | None] | None = None,
        parameters: list[dict[str, Any]] | None = None,
        auth: str | None = "tenant",
        content_type: str = "application/json",
        problems: tuple[int, ...] = (),
    ) -> None:
        op: dict[str, Any] = {"summary": summary, "tags": list(tags),
                              "operationId": f"{method.lower()}_{_op_name(path)}"}
        if parameters:
            op["parameters"] = parameters
        if request is not None:
            body = {"application/json": {"schema": self.schema_ref(request)}}
            op["requestBody"] = {"required": True, "content": body}
        elif form is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/x-www-form-urlencoded": {"schema": form}}}
        out: dict[str, Any] = {}
        for status, model in (responses or {200: None}).items():
            entry: dict[str, Any] = {"description": str(status)}
            if isinstance(model, type) and issubclass(model, BaseModel):
                entry["content"] = {content_type: {"schema": self.schema_ref(model)}}
            elif isinstance(model, dict):
                entry["content"] = {content_type: {"schema": model}}
            out[str(status)] = entry
        codes = ("400", "401", "404", "413", "422") if auth else ("400",)
        for code in (*codes, *(str(p) for p in problems)):
            out.setdefault(code, {"description": "problem", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
        op["responses"] = out
        if auth == "tenant":
            op["security"] = [{"bearer": []}]
        elif auth == "admin":
            op["security"] = [{"bearer": []}]
            op["description"] = "Requires the operator admin key."
        self.paths.setdefault(path, {})[method.lower()] = op

    def replace_property(self, model: type[BaseModel], name: str,
                         schemas: dict[str, dict[str, Any]]) -> None:
        """Describe `model.name` (in requests) as one of `schemas`, discriminated by `type`,
        where what is accepted depends on the deployment, not on the model alone."""
        self.schemas.update(schemas)
        refs = {s["properties"]["type"]["const"]: f"#/components/schemas/{n}"
                for n, s in schemas.items()}
        self.schemas[model.__name__]["properties"][name] = {
            "oneOf": [{"$ref": r} for r in refs.values()],
            "discriminator": {"propertyName": "type", "mapping": refs}}

    def document(self) -> dict[str, Any]:
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "paths": self.paths,
            "components": {
                "schemas": self.schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
        }


def _op_name(path: str) -> str:
    return "_".join(p.strip("{}") for p in path.strip("/").split("/") if p) or "root"
