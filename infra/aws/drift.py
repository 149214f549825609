"""Does the AWS template describe the tables the code uses?

The records in ``chalicelib/db/records.py`` are the one definition of every table;
``resources.yaml`` has to repeat them for CloudFormation (a template cannot import
Python). ``table_drift`` lists every difference between the two, so a unit test
fails the moment they disagree, long before a deploy would.

    python -m infra.aws.drift [template]     # prints the drift; exit 1 if there is any

Both sides are reduced to the same plain facts per table ("key", "global index
by_brand", "stream", "TTL attribute", ...) and compared fact by fact, so every
message reads ``<table>: <fact>: records have X, the template has Y``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

from chalicelib.db.records import ALL_RECORDS

TEMPLATE = Path(__file__).with_name("resources.yaml")
# Table names are spelled with the Stage parameter, as the stages' STORELINK_TABLE_PREFIX.
TABLE_NAME = re.compile(r"^storelink-\$\{Stage\}-(?P<short>[a-z0-9_]+)$")
KEY_ROLES = ("HASH", "RANGE")


# --- loading the template -------------------------------------------------------

class CfnYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads CloudFormation's short tags (!Ref, !Sub,
    !GetAtt, ...) as the long forms JSON templates use ({"Ref": ...}, {"Fn::Sub": ...}).
    A subclass, so that PyYAML's own SafeLoader is left as it was."""


def _short_tag(loader: CfnYamlLoader, tag_suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)  # !GetAtt OutboxTable.StreamArn -> ["OutboxTable", "StreamArn"]
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    return {name: value}


CfnYamlLoader.add_multi_constructor("!", _short_tag)


def load_template(path: str | Path = TEMPLATE) -> dict:
    """A YAML template with short tags, or a JSON one (such as `chalice package`'s sam.json)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith(".json"):
        return json.loads(text)
    return yaml.load(text, Loader=CfnYamlLoader)


def template_tables(template: dict) -> dict[str, str]:
    """Logical id -> properties' short table name, for every AWS::DynamoDB::Table."""
    tables = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::DynamoDB::Table":
            tables[logical_id] = _short_name(resource.get("Properties", {}).get("TableName"))
    return tables


def _short_name(table_name) -> str | None:
    if isinstance(table_name, dict) and isinstance(table_name.get("Fn::Sub"), str):
        match = TABLE_NAME.match(table_name["Fn::Sub"])
        if match:
            return match["short"]
    return None


# --- the facts each side states -------------------------------------------------

def _keys(key_schema: list[dict], types: dict[str, str]) -> str:
    """'hash store_id (S), range sku (S)': by role, whatever order the list has."""
    by_role = {key["KeyType"]: key["AttributeName"] for key in key_schema}
    return ", ".join(f"{role.lower()} {by_role[role]} ({types.get(by_role[role], 'no type')})"
                     for role in KEY_ROLES if role in by_role)


def _projection(projection: dict) -> str:
    kind = projection.get("ProjectionType", "none")
    extra = sorted(projection.get("NonKeyAttributes", []))
    return f"projection {kind}" + (f" {', '.join(extra)}" if extra else "")


def record_facts(record) -> dict[str, str | None]:
    schema = record._get_schema()  # available without AWS or a bound table
    types = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    facts: dict[str, str | None] = {
        "billing mode": getattr(record.Meta, "billing_mode", None) or "PROVISIONED",
        "key": _keys(schema["key_schema"], types),
    }
    for kind in ("global", "local"):
        for index in schema.get(f"{kind}_secondary_indexes", []):
            facts[f"{kind} index {index['index_name']}"] = (
                f"{_keys(index['key_schema'], types)}; {_projection(index['projection'])}")
    facts["stream"] = getattr(record.Meta, "stream_view_type", None)
    ttl = record._ttl_attribute()
    facts["TTL attribute"] = ttl.attr_name if ttl is not None else None
    return facts


def template_facts(properties: dict) -> dict[str, str | None]:
    types = {a["AttributeName"]: a["AttributeType"]
             for a in properties.get("AttributeDefinitions", [])}
    facts: dict[str, str | None] = {
        "billing mode": properties.get("BillingMode", "PROVISIONED"),
        "key": _keys(properties.get("KeySchema", []), types),
    }
    for kind, prop in (("global", "GlobalSecondaryIndexes"), ("local", "LocalSecondaryIndexes")):
        for index in properties.get(prop, []):
            facts[f"{kind} index {index['IndexName']}"] = (
                f"{_keys(index['KeySchema'], types)}; {_projection(index.get('Projection', {}))}")
    facts["stream"] = (properties.get("StreamSpecification") or {}).get("StreamViewType")
    ttl = properties.get("TimeToLiveSpecification") or {}
    enabled = str(ttl.get("Enabled", False)).lower() == "true"
    facts["TTL attribute"] = ttl.get("AttributeName") if enabled else None
    return facts


def _unused_attribute_definitions(properties: dict) -> list[str]:
    """CloudFormation refuses a definition no key or index key uses (only at deploy time)."""
    used = {k["AttributeName"] for k in properties.get("KeySchema", [])}
    for prop in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for index in properties.get(prop, []):
            used |= {k["AttributeName"] for k in index["KeySchema"]}
    return sorted(a["AttributeName"] for a in properties.get("AttributeDefinitions", [])
                  if a["AttributeName"] not in used)


# --- the comparison ---------------------------------------------------------------

def table_drift(template: dict, records=ALL_RECORDS) -> list[str]:
    """Every difference between the template's tables and the records, one line each;
    an empty list when the template describes exactly the tables the code uses."""
    drift: list[str] = []
    resources = template.get("Resources", {})
    in_template: dict[str, str] = {}
    for logical_id, short in template_tables(template).items():
        if short is None:
            drift.append(f"{logical_id}: TableName is not !Sub storelink-${{Stage}}-<short name>")
        elif short in in_template:
            drift.append(f"table {short}: defined twice in the template "
                         f"({in_template[short]}, {logical_id})")
        else:
            in_template[short] = logical_id

    by_short = {record.short_name: record for record in records}
    for short, record in by_short.items():
        if short not in in_template:
            drift.append(f"table {short}: in the records ({record.__name__}), not in the template")
    for short, logical_id in in_template.items():
        if short not in by_short:
            drift.append(f"table {short}: in the template ({logical_id}), not in the records")

    for short, record in by_short.items():
        if short not in in_template:
            continue
        properties = resources[in_template[short]].get("Properties", {})
        wanted, stated = record_facts(record), template_facts(properties)
        for fact in list(wanted) + [f for f in stated if f not in wanted]:
            if wanted.get(fact) != stated.get(fact):
                drift.append(f"{short}: {fact}: records have {wanted.get(fact) or 'none'}, "
                             f"the template has {stated.get(fact) or 'none'}")
        for name in _unused_attribute_definitions(properties):
            drift.append(f"{short}: attribute {name} is defined in the template but no key uses it")
    return drift


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare the AWS template's tables with the records.")
    parser.add_argument("template", nargs="?", default=str(TEMPLATE),
                        help="a YAML merge template or a packaged sam.json (default: %(default)s)")
    args = parser.parse_args(argv)
    drift = table_drift(load_template(args.template))
    for line in drift:
        print(line)
    if not drift:
        print(f"no drift: the template's tables match the {len(ALL_RECORDS)} records")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
