"""Offline JSON schemas for kubeconform, from the Kubernetes OpenAPI spec and CRD manifests.

kubeconform normally downloads its schemas; here they are generated from files that come with Go modules:
the `api/openapi-spec/swagger.json` of k8s.io/kubernetes and the CRD YAML of the operators (KEDA, CloudNativePG).

Built-in kinds go to OUT/<kind>[-<group>]-<version>.json, CRD kinds to OUT/crds/<group>/<kind>_<version>.json,
matching the two -schema-location templates charts/check.sh passes to kubeconform. Every schema is standalone
(the definitions it reaches are inlined) and strict: objects with declared properties reject unknown ones.

usage: python k8s_schemas.py OUT --swagger swagger.json [--crd crd.yaml ...]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml

INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
# resource.Quantity's own syntax: "500m", "2Gi", "1e3", or a plain number in YAML.
QUANTITY = {"oneOf": [{"type": "string", "pattern": r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"},
                      {"type": "number"}]}


def _strict(node):
    """Walk a schema: close objects that list their properties, turn int-or-string into a oneOf."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _strict(v) if k not in ("enum", "default", "example") else v for k, v in node.items()}
    if node.get("format") == "int-or-string" or node.pop("x-kubernetes-int-or-string", False):
        return {**INT_OR_STRING, **({"description": node["description"]} if "description" in node else {})}
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    preserve = node.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in node and "additionalProperties" not in node and not preserve:
        node["additionalProperties"] = False
    return node


def _refs(node, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def builtin_schemas(swagger: dict) -> dict[str, dict]:
    definitions = swagger["definitions"]
    special = {"io.k8s.apimachinery.pkg.util.intstr.IntOrString": INT_OR_STRING,
               "io.k8s.apimachinery.pkg.api.resource.Quantity": QUANTITY}
    out = {}
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk.get("group", ""), gvk["version"], gvk["kind"]
            needed, todo = set(), [name]
            while todo:  # the definitions this kind reaches, transitively
                current = todo.pop()
                if current in needed:
                    continue
                needed.add(current)
                found: set[str] = set()
                _refs(definitions[current], found)
                todo.extend(found - needed)
            needed.discard(name)
            schema = _strict(copy.deepcopy(definition))
            schema["definitions"] = {d: special.get(d) or _strict(definitions[d]) for d in sorted(needed)}
            schema["$schema"] = "http://json-schema.org/draft-07/schema#"
            # kind and apiVersion are fixed for this file: a typo in either must not validate.
            api_version = f"{group}/{version}" if group else version
            schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
            schema["properties"]["apiVersion"] = {"type": "string", "enum": [api_version]}
            suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
            out[f"{kind.lower()}{suffix}.json"] = schema
    return out


OBJECT_META = {"type": "object"}  # metadata of a custom resource is checked by the API server, not the CRD


def crd_schemas(crd: dict) -> dict[str, dict]:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    out = {}
    for version in crd["spec"]["versions"]:
        schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
        schema.setdefault("properties", {})["metadata"] = OBJECT_META
        schema = _strict(schema)
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
        schema["properties"]["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        out[f"crds/{group}/{kind.lower()}_{version['name']}.json"] = schema
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--swagger", type=Path, required=True)
    parser.add_argument("--crd", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    schemas = builtin_schemas(json.loads(args.swagger.read_text()))
    for path in args.crd:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                schemas.update(crd_schemas(doc))
    for name, schema in schemas.items():
        target = args.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema))
    print(f"{len(schemas)} schemas in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
