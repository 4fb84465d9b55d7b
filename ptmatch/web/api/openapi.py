"""The OpenAPI 3.1 document, generated from the operations and their pydantic shapes (the same
classes that validate the requests)."""

from __future__ import annotations

import re
from functools import cache

from pydantic.json_schema import models_json_schema

from ptmatch.domain.api import SCOPES
from ptmatch.web.api import schemas as s

REF = "#/components/schemas/{model}"
ERRORS = {
    "400": "Malformed request",
    "401": "No valid API key",
    "403": "The key lacks the scope, or may not act for this therapist",
    "404": "Not found (or another practice's)",
    "409": "Conflict (the state changed, or an Idempotency-Key reused with another body)",
    "422": "Invalid input, with field details",
    "429": "Too many requests",
}


def _parameters(op, defs) -> list[dict]:
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2_147_483_647},
        }
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        schema = defs[op.query.__name__]
        for name, prop in schema["properties"].items():
            alternatives = [a for a in prop.get("anyOf", []) if a != {"type": "null"}]
            if len(alternatives) == 1:  # a query parameter is absent, never null
                extra = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
                prop = {**alternatives[0], **extra}
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in schema.get("required", []),
                    "schema": prop,
                }
            )
    if op.idempotent_header:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Same key and body: the same slot. Same key, other body: 409.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        )
    return params


@cache
def _schemas(models: tuple) -> dict:
    _mapping, top = models_json_schema(models, ref_template=REF)
    return top.get("$defs", {})


def document(operations) -> dict:
    models = [(s.Problem, "serialization")]
    for op in operations:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.query is not None:
            models.append((op.query, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
    defs = _schemas(tuple(dict.fromkeys(models)))
    paths: dict = {}
    for op in operations:
        responses = {
            str(op.status): {
                "description": "OK",
                "content": {
                    "application/json": {"schema": {"$ref": REF.format(model=op.response.__name__)}}
                },
            }
        }
        if op.links:
            responses[str(op.status)]["links"] = op.links
        for code, text in ERRORS.items():
            responses[code] = {
                "description": text,
                "content": {
                    "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}
                },
            }
        spec = {
            "operationId": op.op_id,
            "summary": op.summary,
            "security": [{"apiKey": [op.scope]}],
            "x-scope": op.scope,
            "parameters": _parameters(op, defs),
            "responses": responses,
        }
        if op.body is not None:
            spec["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}
                },
            }
        paths.setdefault(op.path, {})[op.method.lower()] = spec
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ptmatch practice API",
            "version": "1",
            "description": "Post and track a practice's free slots. Keys are created in the "
            "practice settings; each has scopes: " + ", ".join(SCOPES) + ".",
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "A practice API key"}
            },
        },
        "paths": paths,
    }
