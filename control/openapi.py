"""The OpenAPI 3.1 document, built from the route table and the msgspec types it names."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from control.api import Endpoint
from control.errors import ErrorEnvelope

_REF = "#/components/schemas/{name}"
_REASONS = {
    400: "Malformed request (bad JSON, bad query parameter)", 401: "Missing or unknown API key",
    403: "The API key lacks the scope", 404: "Not found", 409: "Conflicts with the current state",
    422: "Validation failed; details.field is the JSON path", 429: "Rate limited; see Retry-After",
    500: "Internal error",
}


def document(endpoints: list[Endpoint], version: str = "0.1.0") -> dict[str, Any]:
    types: list[Any] = [ErrorEnvelope]
    for ep in endpoints:
        types += [t for t in (ep.body, ep.response) if t is not None]
    types = list(dict.fromkeys(types))
    refs, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema = dict(zip(types, refs, strict=True))
    error = {"application/json": {"schema": schema[ErrorEnvelope]}}

    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in re.findall(r"{(\w+)}", ep.path)
        ]
        for p in ep.query:
            s: dict[str, Any] = {"type": "integer" if p.type is int else "string"}
            if p.enum:
                s["enum"] = list(p.enum)
            if p.format:
                s["format"] = p.format
            if p.pattern:
                s["pattern"] = p.pattern
            s.update({k: v for k, v in (("minimum", p.minimum), ("maximum", p.maximum)) if v is not None})
            params.append({"name": p.name, "in": "query", "required": p.required, "schema": s,
                           **({"description": p.description} if p.description else {})})
        if ep.action == "bidder_campaigns":
            params.append({"name": "If-None-Match", "in": "header", "required": False,
                           "schema": {"type": "string"}})
        ok: dict[str, Any] = {"description": "OK"}
        if ep.response is not None:
            ok["content"] = {ep.media_type: {"schema": schema[ep.response]}}
            if ep.action == "performance_report":
                ok["content"]["text/csv"] = {"schema": {"type": "string"}}
        elif ep.status != 204:
            ok["content"] = {"application/json": {"schema": {"type": "object"}}}
        responses: dict[str, Any] = {str(ep.status): ok}
        if ep.action == "bidder_campaigns":
            responses["304"] = {"description": "Not modified since the ETag given in If-None-Match"}
        codes = set(ep.errors) | {500} | ({401, 403, 429} if ep.scope else set())
        if ep.body is not None or ep.query:
            codes |= {400, 422}
        for code in sorted(codes):
            headers = {"Retry-After": {"schema": {"type": "integer"}}} if code == 429 else {}
            responses[str(code)] = {"description": _REASONS[code], "content": error,
                                    **({"headers": headers} if headers else {})}
        op: dict[str, Any] = {"operationId": ep.action, "summary": ep.summary or ep.action.replace("_", " "),
                              "parameters": params, "responses": responses,
                              "security": [{"bearer": []}] if ep.scope else []}
        if ep.scope:
            op["description"] = f"Needs an API key with scope `{ep.scope}` (or higher)."
        if ep.body is not None:
            body = {"application/json": {"schema": schema[ep.body]}}
            op["requestBody"] = {"required": True, "content": body}
        paths.setdefault(ep.full_path, {})[ep.method.lower()] = op

    return {
        "openapi": "3.1.0",
        "info": {"title": "rtb control plane", "version": version,
                 "description": "Campaigns, performance, optimisation, experiments, rules, reports, "
                                "webhooks."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An API key from `rtb keys create`"}},
        },
    }
