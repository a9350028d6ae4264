"""Safe XML for WeCom callbacks: the outer envelope, and payloads as dicts (§7.2).

The outer body is parsed before the request is authenticated, so all XML goes through
expat with defusedxml's protections (DTDs, entities and external references forbidden;
_expat_parser), behind a size cap and a depth limit. Every failure is a
``MessageError``; callers never see a parser's own exception types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from typing import NoReturn
from xml.parsers import expat

# The envelope only wraps one base64 ciphertext; real ones are a few KiB. The cap
# bounds parser work done before the signature is checked.
ENVELOPE_MAX_BYTES = 64 * 1024
EVENT_MAX_BYTES = 64 * 1024
# WeCom payloads nest three levels at most (ExtAttr/Item/Text/Value). The limit
# keeps the recursive dict conversion far from Python's recursion limit.
MAX_DEPTH = 16

# A parsed value: text, a dict of children, or a list when a tag repeats.
RawValue = str | dict[str, Any] | list[Any]


class MessageError(Exception):
    """Base for every malformed or hostile callback XML.

    Messages are fixed strings naming the problem, never the payload.
    """


class MalformedEnvelope(MessageError):
    """The outer POST body is not a usable ``<xml>…<Encrypt>…</xml>`` envelope."""


class MalformedMessage(MessageError):
    """The decrypted payload is not a usable callback event."""


class MessageTooLarge(MalformedEnvelope, MalformedMessage):
    """The XML is larger than the configured cap."""


# --- safe XML ---------------------------------------------------------------------------


def _to_utf8(
    data: str | bytes | bytearray | memoryview, *, max_bytes: int, error: type[MessageError]
) -> str:
    """Return data as str, enforcing the byte cap and strict UTF-8."""
    if isinstance(data, str):
        # Check the cheap bound first so a huge str is never encoded.
        if len(data) > max_bytes:
            raise MessageTooLarge("xml is too large")
        try:
            size = len(data.encode("utf-8"))
        except UnicodeEncodeError:  # lone surrogates
            size = -1
        if size < 0:
            raise error("xml is not valid unicode")
        if size > max_bytes:
            raise MessageTooLarge("xml is too large")
        return data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise error("xml must be str or bytes")
    if len(data) > max_bytes:
        raise MessageTooLarge("xml is too large")
    # Decoding ourselves and handing str to expat pins the encoding to UTF-8: a
    # declared encoding="gbk" (or anything else) is then ignored, not honoured.
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        pass
    raise error("xml is not UTF-8")


class _Refused(Exception):
    """Raised from inside expat: the document is refused (see _expat_parser)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _refuse_dtd(*_args: object) -> NoReturn:
    raise _Refused("xml uses a forbidden DTD, entity or external reference")


def _expat_parser() -> Any:
    """A bare expat parser with defusedxml's protections, all of them on.

    defusedxml (forbid_dtd, forbid_entities, forbid_external) works by installing
    exactly these handlers on expat; we install them on a parser of our own to skip
    ElementTree's pure-Python tree building, which cost most of a callback's parse
    (issue 17). Any DOCTYPE is refused as it starts, so no entity can ever be declared:
    only XML's five predefined entities and character references exist, and any other
    reference is expat's own "undefined entity" error. Entity and external-reference
    declarations are refused too, should a DTD ever get past the first handler.
    tests/wecom/test_messages.py holds the hostile corpus and compares every result
    with defusedxml's own parse.
    """
    parser = expat.ParserCreate(None, "}")  # as ElementTree: namespaces on, "}" separator
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.buffer_text = True
    parser.ordered_attributes = True  # attributes are ignored: the cheaper form
    return parser


def _tag(name: str) -> str:
    # ElementTree's spelling of a namespaced name: "{uri}local".
    return "{" + name if "}" in name else name


def _parse(text: str, parser: Any, *, error: type[MessageError]) -> None:
    """Feed ``text`` to ``parser``; any failure becomes ``error`` with a fixed message.

    Errors are raised after the except blocks so the parser's exception (which
    may quote the payload) is not chained onto ours.
    """
    problem = None
    try:
        parser.Parse(text, True)
    except _Refused as exc:
        problem = exc.problem
    except (expat.ExpatError, ValueError, LookupError):
        problem = "xml is malformed"
    if problem is not None:
        raise error(problem)


def _xml_value(data: str | bytes, *, max_bytes: int, error: type[MessageError]) -> RawValue:
    """Return the ``<xml>`` root of data as a value, built in one pass over expat.

    A leaf is its trimmed text (an official sample has spaces around its CDATA
    sections); an element with children is a dict of them, a tag seen more than once
    a list in document order; text around children is ignored. The same values
    ElementTree's tree would give (tests/wecom/test_messages.py compares them).
    """
    text = _to_utf8(data, max_bytes=max_bytes, error=error)
    parser = _expat_parser()
    # One frame per open element: [tag, children (None while a leaf), text parts].
    stack: list[list[Any]] = []
    done: list[tuple[str, RawValue]] = []

    def start(name: str, _attributes: list[str]) -> None:
        if len(stack) > MAX_DEPTH:  # this element's depth (the root's is 0)
            raise _Refused("xml is nested too deeply")
        stack.append([_tag(name), None, []])

    def end(_name: str) -> None:
        tag, children, parts = stack.pop()
        value = "".join(parts).strip() if children is None else children
        if not stack:
            done.append((tag, value))
            return
        parent = stack[-1]
        if parent[1] is None:
            parent[1] = {}
        siblings = parent[1]
        if tag not in siblings:
            siblings[tag] = value
        elif isinstance(existing := siblings[tag], list):
            existing.append(value)
        else:
            siblings[tag] = [existing, value]

    def characters(chunk: str) -> None:
        stack[-1][2].append(chunk)  # expat reports no text outside the root

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    _parse(text, parser, error=error)
    tag, value = done[0]  # expat accepts exactly one root element
    if tag != "xml":
        raise error("root element must be <xml>")
    return value


def parse_xml(data: str | bytes, *, max_bytes: int = EVENT_MAX_BYTES) -> dict[str, Any]:
    """Return an ``<xml>`` document as a dict of its (trimmed, nested) fields."""
    value = _xml_value(data, max_bytes=max_bytes, error=MalformedMessage)
    return value if isinstance(value, dict) else {}


# --- envelope -----------------------------------------------------------------------------


# --- envelope -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """The outer POST body: routing hints (unauthenticated!) and the ciphertext."""

    to_user_name: str
    agent_id: str
    encrypt: str


def parse_envelope(body: str | bytes, *, max_bytes: int = ENVELOPE_MAX_BYTES) -> Envelope:
    """Return the Envelope of a callback POST body.

    ``to_user_name`` and ``agent_id`` are "" when absent (command URLs send an
    empty AgentID). They are not signed: use them to pick a key, never to trust.
    Only the root's leaf children are read; a child with children of its own is
    ignored rather than guessed at.
    """
    text = _to_utf8(body, max_bytes=max_bytes, error=MalformedEnvelope)
    parser = _expat_parser()
    root: list[str] = []
    fields: dict[str, str] = {}
    repeated: list[str] = []
    # The root child being read: [tag, text parts, has children]; depth of the parser.
    child: list[Any] = []
    depth = 0

    def start(name: str, _attributes: list[str]) -> None:
        nonlocal depth, child
        if depth == 0:
            root.append(_tag(name))
        elif depth == 1:
            child = [_tag(name), [], False]
        elif depth == 2:
            child[2] = True
        depth += 1

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1
        if depth == 1 and not child[2]:
            tag = child[0]
            if tag in fields:
                repeated.append(tag)
            fields[tag] = "".join(child[1]).strip()

    def data(chunk: str) -> None:
        if depth == 2:  # directly inside a root child
            child[1].append(chunk)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    _parse(text, parser, error=MalformedEnvelope)
    if root[0] != "xml":
        raise MalformedEnvelope("root element must be <xml>")
    if repeated:
        # Two Encrypt elements could make the signature and the decryption
        # disagree about which ciphertext was meant.
        raise MalformedEnvelope("envelope repeats a field")
    encrypt = fields.get("Encrypt")
    if not encrypt:
        raise MalformedEnvelope("envelope has no Encrypt")
    return Envelope(
        to_user_name=fields.get("ToUserName", ""),
        agent_id=fields.get("AgentID", ""),
        encrypt=encrypt,
    )
