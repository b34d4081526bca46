"""The Socrata stand-in's SoQL: tokens, the errors a portal answers with, and the parser.

A practical subset of SoQL (``$select``, ``$where``, ``$order``, ``$group``, aggregates) parsed
into expressions over rows; anything outside the subset is refused the way a portal refuses it,
so a client relying on an unsupported feature fails here instead of against the real API.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from ingest_assets.standin.socrata_data import (
    SYSTEM_FIELDS,
    Row,
    _decimal,
    _family,
)

# --- SoQL: tokens, errors, expressions ---------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # "string" | "number" | "ident" | "op" | "end"
    value: str
    pos: int  # 0-based offset in the parameter text


_TOKEN = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<ident>:?@?[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)"
    r"|(?P<op><>|!=|>=|<=|=|<|>|\(|\)|,|:\*|\*|-)"
)


class _QueryError(Exception):
    """A SoQL error, carrying the status and JSON body the real API would answer with."""

    def __init__(self, body: dict[str, object], status: int = 400) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def _malformed(text: str, pos: int) -> _QueryError:
    # Parse errors use the key "code"; semantic errors use "errorCode".
    return _QueryError(
        {
            "code": "query.compiler.malformed",
            "error": True,
            "message": f'Could not parse SoQL query "{text}" at line 1 character {pos + 1}',
            "data": {"query": text, "position": {"line": 1, "column": pos + 1}},
        }
    )


def _semantic(code: str, detail: str, text: str, pos: int, **data: object) -> _QueryError:
    where = f'Map(row -> 1, column -> {pos + 1}, line -> "{text}")'
    return _QueryError(
        {
            "message": f"Query coordinator error: {code}; {detail}; position: {where}",
            "errorCode": code,
            "data": {**data, "position": {"row": 1, "column": pos + 1, "line": text}},
        }
    )


def _unsupported(what: str) -> _QueryError:
    return _QueryError({"error": True, "message": f"Not supported by the Socrata stand-in: {what}"})


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _malformed(text, pos)
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "string":
            tokens.append(_Token(kind, value[1:-1].replace("''", "'"), pos))
        elif kind == "ident":
            tokens.append(_Token(kind, value.strip("`"), pos))
        elif kind != "ws":
            tokens.append(_Token(kind, value, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


_NOT_CONSTANT = object()


@dataclass(frozen=True)
class _Expr:
    """A compiled expression: how to evaluate it on a row, and its type family."""

    evaluate: Callable[[Row], object]
    family: str  # "text" | "number" | "floating" | "boolean" | "object" | "null"
    constant: object = _NOT_CONSTANT


_FLOATING_LITERAL = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?))?"
)


def _floating_literal(text: str) -> str | None:
    """Pad a date/time literal to the stored form ``YYYY-MM-DDTHH:MM:SS.fff``."""
    match = _FLOATING_LITERAL.fullmatch(text)
    if match is None:
        return None
    clock = match[2] or "00:00"
    clock += ":00" if len(clock) == 5 else ""
    clock += ".000" if "." not in clock else "000"[: 12 - len(clock)]
    return f"{match[1]}T{clock}"


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_DATE_PARTS = {
    "date_extract_y": slice(0, 4),
    "date_extract_m": slice(5, 7),
    "date_extract_d": slice(8, 10),
}
_AGGREGATES = {"count", "min", "max"}


def _junction(items: Sequence[_Expr], decisive: bool) -> _Expr:
    """AND (``decisive=False``) or OR (``decisive=True``) with SQL's three-valued logic."""

    def evaluate(row: Row) -> object:
        result: bool | None = not decisive
        for item in items:
            value = item.evaluate(row)
            if value is decisive:
                return decisive
            if value is None:
                result = None
        return result

    return _Expr(evaluate, "boolean")


def _not(item: _Expr) -> _Expr:
    def evaluate(row: Row) -> object:
        value = item.evaluate(row)
        return None if value is None else not value

    return _Expr(evaluate, "boolean")


def _literal(value: object, family: str) -> _Expr:
    return _Expr(lambda _row: value, family, value)


class _Parser:
    """Recursive-descent SoQL parser for one parameter, compiling against a dataset schema.

    Parse errors are raised at once; the first semantic error (unknown column, type
    mismatch, ...) is raised only after the whole text parsed, as the real API reports them.
    """

    def __init__(self, text: str, schema: Mapping[str, str], dataset: str) -> None:
        self.text = text
        self.schema = schema
        self.dataset = dataset
        self.tokens = _tokenize(text)
        self.index = 0
        self.semantic_error: _QueryError | None = None

    # token helpers
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "ident" and token.value.upper() == word:
            self.index += 1
            return True
        return False

    def op(self, value: str) -> bool:
        token = self.peek()
        if token.kind == "op" and token.value == value:
            self.index += 1
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.op(op):
            raise _malformed(self.text, self.peek().pos)

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            raise _malformed(self.text, self.peek().pos)
        if self.semantic_error is not None:
            raise self.semantic_error

    def fail(self, error: _QueryError) -> _Expr:
        """Remember the first semantic error; parsing goes on with a null in its place."""
        self.semantic_error = self.semantic_error or error
        return _literal(None, "null")

    def semantic(self, code: str, detail: str, pos: int, **data: object) -> _QueryError:
        """A semantic error about this query, naming its dataset as a portal does."""
        return _semantic(code, detail, self.text, pos, **data, dataset=f"alpha.{self.dataset}")

    def column(self, token: _Token) -> tuple[str, str] | None:
        """(name, dataTypeName) of a column reference, recording no-such-column if unknown."""
        if token.value in self.schema:
            return token.value, self.schema[token.value]
        self.fail(
            self.semantic(
                "query.soql.no-such-column",
                f"No such column: {token.value}",
                token.pos,
                column=token.value,
            )
        )
        return None

    def mismatch(self, token: _Token, *families: str) -> _Expr:
        return self.fail(
            self.semantic(
                "query.soql.type-mismatch",
                f"Type mismatch for {token.value}, is {'/'.join(families)}",
                token.pos,
                name=token.value,
            )
        )

    # $where
    def condition(self) -> _Expr:
        start = self.peek()
        expr = self.disjunction()
        self.expect_end()
        if expr.family not in ("boolean", "null"):
            raise self.semantic(
                "query.soql.type-mismatch",
                f"$where must be boolean, is {expr.family}",
                start.pos,
            )
        return expr

    def disjunction(self) -> _Expr:
        items = [self.conjunction()]
        while self.keyword("OR"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else _junction(items, decisive=True)

    def conjunction(self) -> _Expr:
        items = [self.negation()]
        while self.keyword("AND"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else _junction(items, decisive=False)

    def negation(self) -> _Expr:
        return _not(self.negation()) if self.keyword("NOT") else self.predicate()

    def predicate(self) -> _Expr:
        left = self.operand()
        token = self.peek()
        if token.kind == "op" and token.value in _COMPARISONS:
            self.index += 1
            return self.compare(token, left, self.operand())
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            if not self.keyword("NULL"):
                raise _malformed(self.text, self.peek().pos)
            return _Expr(lambda row: (left.evaluate(row) is None) != negated, "boolean")
        negated = self.keyword("NOT")
        token = self.peek()
        if self.keyword("BETWEEN"):
            low = self.operand()
            if not self.keyword("AND"):
                raise _malformed(self.text, self.peek().pos)
            high = self.operand()
            ge, le = token._replace(value=">="), token._replace(value="<=")
            expr = _junction(
                [self.compare(ge, left, low), self.compare(le, left, high)], decisive=False
            )
        elif self.keyword("IN"):
            self.expect_op("(")
            options = [self.operand()]
            while self.op(","):
                options.append(self.operand())
            self.expect_op(")")
            eq = token._replace(value="=")
            expr = _junction([self.compare(eq, left, option) for option in options], decisive=True)
        elif self.keyword("LIKE"):
            expr = self.like(token, left, self.operand())
        elif negated:
            raise _malformed(self.text, self.peek().pos)
        else:
            return left
        return _not(expr) if negated else expr

    def operand(self) -> _Expr:
        token = self.take()
        if token.kind == "op" and token.value == "(":
            expr = self.disjunction()
            self.expect_op(")")
            return expr
        if token.kind == "op" and token.value == "-" and self.peek().kind == "number":
            return _literal(-Decimal(self.take().value), "number")
        if token.kind == "string":
            return _literal(token.value, "text")
        if token.kind == "number":
            return _literal(Decimal(token.value), "number")
        if token.kind != "ident":
            raise _malformed(self.text, token.pos)
        return self.identifier(token)

    def identifier(self, token: _Token) -> _Expr:
        """A keyword literal, a function call or a column, by what the word is."""
        word = token.value.upper()
        if word in ("TRUE", "FALSE"):
            return _literal(word == "TRUE", "boolean")
        if word == "NULL":
            return _literal(None, "null")
        if self.op("("):
            return self.call(token)
        column = self.column(token)
        if column is None:
            return _literal(None, "null")
        name, data_type = column
        family = _family(data_type)
        if family == "number":
            return _Expr(lambda row: _decimal(row.get(name)), family)
        return _Expr(lambda row: row.get(name), family)

    def call(self, token: _Token) -> _Expr:
        name = token.value.lower()
        argument = _literal(None, "null") if self.op("*") else self.operand()
        self.expect_op(")")
        if name in _AGGREGATES:
            return self.fail(
                self.semantic(
                    "query.soql.aggregate-in-ungrouped-context",
                    f"Aggregate function {name} in ungrouped context",
                    token.pos,
                )
            )
        if name not in _DATE_PARTS:
            return self.fail(
                self.semantic(
                    "query.soql.no-such-function",
                    f"No such function: {name}",
                    token.pos,
                    name=name,
                )
            )
        if argument.family not in ("floating", "null"):
            return self.mismatch(token, argument.family)
        part = _DATE_PARTS[name]

        def evaluate(row: Row) -> object:
            value = argument.evaluate(row)
            return None if value is None else Decimal(str(value)[part])

        return _Expr(evaluate, "number")

    @staticmethod
    def coerce(target: str, literal: _Expr) -> _Expr | None:
        """A text literal converted to ``target``'s family, or None when it cannot be."""
        if literal.family != "text" or literal.constant is _NOT_CONSTANT:
            return None
        text = str(literal.constant)
        if target == "number":
            converted: object = _decimal(text)
        elif target == "floating":
            converted = _floating_literal(text)
        else:
            return None
        return None if converted is None else _literal(converted, target)

    def compare(self, token: _Token, left: _Expr, right: _Expr) -> _Expr:
        """``left <op> right``; a text literal is read as the other side's number or timestamp."""
        if "null" not in (left.family, right.family) and left.family != right.family:
            coerced_right = self.coerce(left.family, right)
            coerced_left = self.coerce(right.family, left)
            if coerced_right is not None:
                right = coerced_right
            elif coerced_left is not None:
                left = coerced_left
            else:
                return self.mismatch(token, left.family, right.family)
        if "object" in (left.family, right.family):
            return self.mismatch(token, "object")
        test = _COMPARISONS[token.value]

        def evaluate(row: Row) -> object:
            a, b = left.evaluate(row), right.evaluate(row)
            return None if a is None or b is None else test(a, b)

        return _Expr(evaluate, "boolean")

    def like(self, token: _Token, left: _Expr, pattern: _Expr) -> _Expr:
        if left.family != "text" or pattern.constant is _NOT_CONSTANT:
            return self.mismatch(token, left.family)
        regex = re.compile(
            "".join(
                ".*" if c == "%" else "." if c == "_" else re.escape(c)
                for c in str(pattern.constant)
            ),
            re.DOTALL,
        )

        def evaluate(row: Row) -> object:
            value = left.evaluate(row)
            return None if value is None else regex.fullmatch(str(value)) is not None

        return _Expr(evaluate, "boolean")

    # $select
    def selection(self) -> list[_SelectItem]:
        items: list[_SelectItem] = []
        while True:
            items.extend(self.select_item())
            if not self.op(","):
                break
        self.expect_end()
        if any(item.aggregate for item in items) and not all(item.aggregate for item in items):
            plain = next(item for item in items if not item.aggregate)
            raise self.semantic(
                "query.soql.column-not-in-group-bys",
                f"Column not in group bys: {plain.source}",
                self.text.find(plain.source),
            )
        return items

    def select_item(self) -> list[_SelectItem]:
        token = self.take()
        if token.kind == "op" and token.value in ("*", ":*"):
            system = token.value == ":*"
            names = [name for name in self.schema if (name in SYSTEM_FIELDS) == system]
            return [_SelectItem(name, name, self.schema[name]) for name in names]
        if token.kind != "ident":
            raise _malformed(self.text, token.pos)
        if self.op("("):
            item = self.aggregate(token)
        else:
            column = self.column(token)
            item = _SelectItem(token.value, token.value, column[1] if column else "text")
        if self.keyword("AS"):
            alias = self.take()
            if alias.kind != "ident":
                raise _malformed(self.text, alias.pos)
            item = item._replace(output=alias.value)
        return [item]

    def aggregate(self, token: _Token) -> _SelectItem:
        name = token.value.lower()
        argument = self.take()
        self.expect_op(")")
        if name not in _AGGREGATES:
            raise _unsupported(f"function {name} in $select")
        if argument.kind == "op" and argument.value == "*" and name == "count":
            return _SelectItem("count", "*", "number", "count")
        if argument.kind != "ident":
            raise _malformed(self.text, argument.pos)
        column = self.column(argument)
        data_type = "number" if name == "count" or column is None else column[1]
        if _family(data_type) == "object":
            self.mismatch(token, "object")
        return _SelectItem(f"{name}_{argument.value}", argument.value, data_type, name)

    # $order
    def ordering(self) -> list[tuple[str, str, bool]]:
        keys = []
        while True:
            token = self.take()
            if token.kind != "ident":
                raise _malformed(self.text, token.pos)
            column = self.column(token)
            descending = self.keyword("DESC")
            if not descending:
                self.keyword("ASC")
            if column is not None and _family(column[1]) == "object":
                self.mismatch(token, "object")
            elif column is not None:
                keys.append((*column, descending))
            if not self.op(","):
                break
        self.expect_end()
        return keys


class _SelectItem(NamedTuple):
    output: str
    source: str  # column name, or "*" for count(*)
    data_type: str
    aggregate: str | None = None
