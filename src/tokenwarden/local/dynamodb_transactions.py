"""DynamoDB's TransactWriteItems, all or nothing, at the cost of the items it names.

moto (5.2.5) makes a transaction undoable by deep-copying every table the transaction names before
its first write, and puts the copies back when an item fails. A call then costs the size of the
table: a night that closes each principal's rotation with one transaction on a ledger that holds
every principal grows with the square of the registry (1,000 principals rotating took over nine
minutes on the embedded stack, 100 took twelve seconds).

:func:`install` replaces it with the order DynamoDB documents: every item's condition is checked
before anything is written, and when one fails nothing is written
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html). Only then
are the items written, each one's previous state kept first (a copy of those items, not of the
table), and put back if a write fails. The answers are moto's own: ``TransactionCanceledException``
with one cancellation reason per item (``ConditionalCheckFailed``, the old item attached when
``ReturnValuesOnConditionCheckFailure`` is ``ALL_OLD``, ``None`` for the others), a
``ValidationException`` for two operations on one item, more than 100 items, or an item moto refuses
to write. moto ignores ``ClientRequestToken``; so does this.

Single-item writes and transactions take one lock: a conditional write is atomic on AWS, and a
transaction is isolated from the writes around it, where moto's server threads could otherwise
interleave a check and a write. A table with a stream keeps moto's whole-table copy (its stream
records, and the functions they trigger, would outlive putting items back).

Not a switch: the answers are DynamoDB's, only moto's bookkeeping is cheaper.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item

__all__ = ["MAX_ITEMS", "install"]

MAX_ITEMS: Final = 100
OPERATIONS: Final = frozenset({"ConditionCheck", "Put", "Delete", "Update"})
_PATCH_MARK: Final = "__tokenwarden_item_transactions__"
_writes = threading.RLock()
_lock = threading.Lock()

# One cancellation reason per item, as moto's TransactionCanceledException takes them:
# (code, message, old item) for a failed item, (None, None, None) for the others.
Reason = tuple[str | None, str | None, dict[str, Any] | None]
NO_REASON: Final[Reason] = (None, None, None)
ItemAddress = tuple[str, DynamoType, DynamoType | None]


@dataclass(frozen=True)
class Write:
    """One item of a transaction: its operation (Put, Update, Delete, ConditionCheck), the
    operation's parameters, and the table and key it names."""

    kind: str
    op: dict[str, Any]
    table: str
    key: dict[str, Any]


def parse(backend: DynamoDBBackend, item: dict[str, Any]) -> Write:
    """The transaction item as a Write; a Put's key comes from its item."""
    if len(item) > 1:
        raise TransactWriteSingleOpException
    kind, op = next(iter(item.items()))
    if kind not in OPERATIONS:
        raise ValueError("Unsupported transaction operation")
    table_name = op["TableName"]
    if kind != "Put":
        return Write(kind, op, table_name, op["Key"])
    table = backend.get_table(table_name)
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return Write(kind, op, table_name, key)


def condition_reason(write: Write, current: Item | None) -> Reason:
    """Why the item's condition refuses it (DynamoDB's cancellation reason), NO_REASON when it
    holds or there is none."""
    expression = write.op.get("ConditionExpression")
    if expression is None:
        return NO_REASON
    condition = get_filter_expression(
        expression, write.op.get("ExpressionAttributeNames"), write.op.get("ExpressionAttributeValues")
    )
    if condition.expr(current):
        return NO_REASON
    wants_old = write.op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
    old = current.to_json()["Attributes"] if wants_old and current is not None else None
    return ("ConditionalCheckFailed", ConditionalCheckFailed().message, old)


def claim(claimed: set[tuple[str, str]], write: Write) -> None:
    """Refuse a second operation on an item the transaction already names (a ValidationException)."""
    address = (str(write.table), str(dict(sorted(write.key.items()))))
    if address in claimed:
        raise MultipleTransactionsException
    claimed.add(address)


def check_all(backend: DynamoDBBackend, items: list[dict[str, Any]]) -> tuple[list[Write], list[Reason]]:
    """Every item checked, nothing written: the writes to make and one reason per item.

    A validation error ends the transaction at once, as moto raises it; an item that cannot be
    checked (no such table, a bad key) is a cancellation reason named after its error, as moto
    gives it."""
    writes: list[Write] = []
    reasons: list[Reason] = []
    claimed: set[tuple[str, str]] = set()
    for item in items:
        try:
            write = parse(backend, item)
            claim(claimed, write)
            reasons.append(condition_reason(write, backend.get_item(write.table, write.key)))
            writes.append(write)
        except MockValidationException:
            raise
        except Exception as exc:  # moto's own rule: any other error cancels, named by its type
            reasons.append((type(exc).__name__, str(exc), None))
    return writes, reasons


def address(backend: DynamoDBBackend, write: Write) -> ItemAddress:
    table = backend.get_table(write.table)
    hash_key, range_key = backend.get_keys_value(table, write.key)
    return write.table, hash_key, range_key


def keep(backend: DynamoDBBackend, writes: list[Write]) -> dict[ItemAddress, Item | None]:
    """A copy of each item the transaction is about to write (None: it does not exist yet).
    Copies, because an update changes the stored item in place."""
    saved: dict[ItemAddress, Item | None] = {}
    for write in writes:
        if write.kind == "ConditionCheck":
            continue
        where = address(backend, write)
        table_name, hash_key, range_key = where
        saved[where] = copy.deepcopy(backend.get_table(table_name).get_item(hash_key, range_key))
    return saved


def put_back(backend: DynamoDBBackend, saved: dict[ItemAddress, Item | None]) -> None:
    """Every kept item as it was before the transaction; an item it created is gone again."""
    for (table_name, hash_key, range_key), item in saved.items():
        items: dict[Any, Any] = backend.get_table(table_name).items
        if range_key is None:
            if item is None:
                items.pop(hash_key, None)
            else:
                items[hash_key] = item
            continue
        bucket = items[hash_key]
        if item is None:
            bucket.pop(range_key, None)
            if not bucket:
                del items[hash_key]
        else:
            bucket[range_key] = item


def apply(backend: DynamoDBBackend, write: Write) -> None:
    """Write one checked item as moto writes it."""
    op = write.op
    condition = op.get("ConditionExpression")
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    if write.kind == "Put":
        backend.put_item(
            write.table,
            op["Item"],
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif write.kind == "Delete":
        backend.delete_item(write.table, write.key, names, values, condition)
    elif write.kind == "Update":
        backend.update_item(
            write.table,
            write.key,
            update_expression=op["UpdateExpression"],
            condition_expression=condition,
            expression_attribute_names=names or {},
            expression_attribute_values=values or {},
        )


def write_all(backend: DynamoDBBackend, writes: list[Write]) -> None:
    """Write every item, or none: what was written is put back when one write fails."""
    saved = keep(backend, writes)
    reasons: list[Reason] = []
    for write in writes:
        try:
            apply(backend, write)
            reasons.append(NO_REASON)
        except MockValidationException:
            put_back(backend, saved)
            raise
        except Exception as exc:  # moto's own rule, as in check_all
            reasons.append((type(exc).__name__, str(exc), None))
    if any(code is not None for code, _, _ in reasons):
        put_back(backend, saved)
        raise TransactionCanceledException(reasons)


def streamed(backend: DynamoDBBackend, items: list[dict[str, Any]]) -> bool:
    """Whether a table the transaction names has a stream."""
    names = {op.get("TableName") for item in items for op in item.values() if isinstance(op, dict)}
    return any(name in backend.tables and backend.tables[name].stream_shard is not None for name in names)


def _item_by_item(original: Callable[[DynamoDBBackend, list[dict[str, Any]]], None]) -> Any:
    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > MAX_ITEMS:
            raise TooManyTransactionsException
        with _writes:
            if streamed(self, transact_items):
                original(self, transact_items)
                return
            writes, reasons = check_all(self, transact_items)
            if any(code is not None for code, _, _ in reasons):
                raise TransactionCanceledException(reasons)
            write_all(self, writes)

    setattr(transact_write_items, _PATCH_MARK, True)
    return transact_write_items


def _one_at_a_time(write: Callable[..., Any]) -> Any:
    @functools.wraps(write)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _writes:
            return write(*args, **kwargs)

    setattr(locked, _PATCH_MARK, True)
    return locked


def install() -> None:
    """Patch moto's DynamoDBBackend (idempotent)."""
    with _lock:
        current = DynamoDBBackend.transact_write_items
        if getattr(current, _PATCH_MARK, False):
            return
        DynamoDBBackend.transact_write_items = _item_by_item(current)  # type: ignore[method-assign]
        for name in ("put_item", "update_item", "delete_item"):
            setattr(DynamoDBBackend, name, _one_at_a_time(getattr(DynamoDBBackend, name)))
