"""DynamoDB's Scan and Query pages, written out at the cost of JSON; a Query reads its partition.

moto (5.2.5) writes every answer through its generic serializer, which looks each attribute value
of each item up in the service model, alias by alias. A ledger ``Scan`` page of 1 MB is thousands
of items: at 1,000 principals that serialization was most of ``status``'s time and of a quiet
night's. :func:`install` writes a Scan or Query page's items as they are when they are plain
DynamoDB JSON (string, number, boolean and null values, their sets, lists and maps: what the
serializer would write unchanged) and lets the serializer write the rest of the answer (counts, the
last evaluated key, consumed capacity). An item with anything else, binary values for instance,
sends the whole answer through the serializer as before. The answer's content is moto's; only its
cost changes.

moto's ``Query`` on a table (not an index) also gathers and sorts every item of the table, then
keeps those of the partition asked for: each ``Query`` of the ledger cost the whole ledger. It now
gathers the partition's items only; moto then filters, sorts and pages them as before.

Not a switch.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable
from typing import Any, Final

from moto.core.responses import ActionContext, ActionResult
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoResult

__all__ = ["install", "plain"]

OPERATIONS: Final = frozenset({"Scan", "Query"})
SCALARS: Final = frozenset({"S", "N"})
SETS: Final = frozenset({"SS", "NS"})
_PATCH_MARK: Final = "__tokenwarden_plain_pages__"
_lock = threading.Lock()
_partition = threading.local()  # the table and hash key the current thread's Query reads


def plain(value: Any) -> bool:
    """Whether an attribute value is DynamoDB JSON that the serializer writes unchanged."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    kind, inner = next(iter(value.items()))
    if kind in SCALARS:
        return isinstance(inner, str)
    if kind in SETS:
        return isinstance(inner, list) and all(isinstance(v, str) for v in inner)
    if kind in ("BOOL", "NULL"):
        return isinstance(inner, bool)
    if kind == "L":
        return isinstance(inner, list) and all(plain(v) for v in inner)
    if kind == "M":
        return isinstance(inner, dict) and all(isinstance(k, str) and plain(v) for k, v in inner.items())
    return False


def plain_items(result: Any) -> list[dict[str, Any]] | None:
    """The answer's items when every attribute of every item is plain; None otherwise."""
    if not isinstance(result, dict) or not isinstance(result.get("Items"), list):
        return None
    items: list[dict[str, Any]] = result["Items"]
    for item in items:
        if not isinstance(item, dict) or not all(isinstance(k, str) and plain(v) for k, v in item.items()):
            return None
    return items


def _items_written_as_json(original: Callable[[ActionResult, ActionContext], Any]) -> Any:
    def execute_result(self: ActionResult, context: ActionContext) -> Any:
        result = self.result
        items = plain_items(result) if context.operation_model.name in OPERATIONS else None
        if items is None:
            return original(self, context)
        assert isinstance(result, dict)  # plain_items found its items
        rest = ActionResult({k: v for k, v in result.items() if k != "Items"})
        status, headers, body = original(rest, context)
        answer = json.loads(body)
        answer["Items"] = items
        return status, headers, json.dumps(answer)

    setattr(execute_result, _PATCH_MARK, True)
    execute_result.__wrapped__ = original  # type: ignore[attr-defined]  # moto's own, for comparison
    return execute_result


def partition_items(table: Table, hash_key: DynamoType) -> list[Item]:
    """The items of one partition, in key order, as ``Table.all_items`` orders the whole table."""
    found = table.items.get(hash_key)
    if found is None:
        return []
    if isinstance(found, Item):
        return [found]
    return sorted(found.values(), key=lambda item: item.range_key)


def _partition_only(all_items: Callable[[Table], list[Item]]) -> Any:
    def items_in_scope(self: Table) -> list[Item]:
        scope = getattr(_partition, "scope", None)
        if scope is not None and scope[0] is self:
            return partition_items(self, scope[1])
        return all_items(self)

    setattr(items_in_scope, _PATCH_MARK, True)
    return items_in_scope


def _reading_one_partition(query: Callable[..., Any]) -> Any:
    signature = inspect.signature(query)

    def partition_query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
        index_name = signature.bind(self, hash_key, *args, **kwargs).arguments.get("index_name")
        if index_name or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        _partition.scope = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _partition.scope = None

    setattr(partition_query, _PATCH_MARK, True)
    partition_query.__wrapped__ = query  # type: ignore[attr-defined]  # moto's own, for comparison
    return partition_query


def install() -> None:
    """Patch moto's DynamoResult and Table (idempotent)."""
    with _lock:
        current = DynamoResult.execute_result
        if not getattr(current, _PATCH_MARK, False):
            DynamoResult.execute_result = _items_written_as_json(current)  # type: ignore[method-assign]
        if not getattr(Table.query, _PATCH_MARK, False):
            Table.all_items = _partition_only(Table.all_items)  # type: ignore[method-assign]
            Table.query = _reading_one_partition(Table.query)  # type: ignore[method-assign]
