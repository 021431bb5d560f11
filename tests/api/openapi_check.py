"""Every answer the API tests receive is checked against the OpenAPI document: the schema documented
for its path, method and status (``default`` for an undocumented error status). ``Coverage`` notes
which properties of which component schemas showed up, so a test can prove every documented field
appears in some real answer."""
from __future__ import annotations

import re
from typing import Optional

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "/api/v1"
DOC_URI = "urn:backupchecks:openapi"


class Coverage:
    def __init__(self):
        self.seen: set[tuple[str, str]] = set()

    def missing(self, doc: dict) -> list[str]:
        out = []
        for name, schema in doc["components"]["schemas"].items():
            for prop in schema.get("properties", {}):
                if (name, prop) not in self.seen:
                    out.append(f"{name}.{prop}")
        return out


class OpenApiChecker:
    def __init__(self, doc: dict):
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOC_URI, resource)
        self.coverage = Coverage()
        self._paths = []
        for template in doc["paths"]:
            pattern = re.sub(r"\{[^}]+\}", r"[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
            self._paths.append((re.compile(pattern + "$"), template))

    def operation(self, method: str, path: str) -> tuple[str, Optional[dict]]:
        path = path.split("?", 1)[0]
        assert path.startswith(BASE), path
        rest = path[len(BASE):]
        # Literal paths win over templated ones (/runs/review before /runs/{run_id}/...).
        matches = [t for rx, t in self._paths if rx.match(rest)]
        matches.sort(key=lambda t: t.count("{"))
        if not matches:
            return rest, None
        template = matches[0]
        return template, self.doc["paths"][template].get(method.lower())

    def response_schema(self, method: str, path: str, status: int) -> dict:
        template, op = self.operation(method, path)
        if op is None and status >= 400:  # an address or method the API does not have: still its error shape
            return {"$ref": "#/components/schemas/Error"}
        assert op is not None, f"{method} {path}: not in the OpenAPI document"
        responses = op["responses"]
        response = responses.get(str(status)) or responses.get("default")
        assert response is not None, f"{method} {template} {status}: status not documented"
        if str(status) not in responses:
            assert status >= 400, f"{method} {template}: success {status} not documented"
        return response["content"]["application/json"]["schema"]

    def check(self, method: str, path: str, status: int, body, headers=None) -> None:
        schema = self.response_schema(method, path, status)
        validator = Draft202012Validator({"$ref": DOC_URI + schema["$ref"]} if "$ref" in schema else schema,
                                         registry=self.registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{method} {path} {status}: {errors[0].message} at {list(errors[0].path)}"
        self._note(schema, body)

    def _resolve(self, schema: dict) -> tuple[Optional[str], dict]:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return name, self.doc["components"]["schemas"][name]
        return None, schema

    def _note(self, schema: dict, value) -> None:
        if "anyOf" in schema:
            for option in schema["anyOf"]:
                if option.get("type") != "null" and value is not None:
                    self._note(option, value)
            return
        name, schema = self._resolve(schema)
        if isinstance(value, dict) and "properties" in schema:
            for prop, sub in schema["properties"].items():
                if prop in value:
                    if name:
                        self.coverage.seen.add((name, prop))
                    self._note(sub, value[prop])
        elif isinstance(value, list) and "items" in schema:
            for item in value:
                self._note(schema["items"], item)
