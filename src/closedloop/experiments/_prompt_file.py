"""Read one prompt file into a :class:`PromptSpec`, refusing anything unclear.

One file per prompt, named after it, in a directory of the app's git repository::

    # prompts/triage.yaml
    name: triage                    # the file's name without .yaml
    experiment: triage-2025-06      # routing key: the same unit keeps its version while
                                    # this stays; a new id re-randomises every unit
    variables: [product, ticket]    # what the app passes to select(); templates use these
    versions:
      v3:
        status: production          # exactly one: serves every unit no test takes
        model: gpt-4o-mini
        parameters: {temperature: 0.2, max_tokens: 400}   # optional, passed to the call
        messages:
          - role: system            # system | developer | user | assistant
            content: |
              You triage support tickets for {product}.
          - role: user
            content: "{ticket}"
      v4:
        status: testing             # serves `share` percent of units (steps of 0.01)
        share: 20
        model: gpt-4o-mini
        messages: [...]
      v5:
        status: shadow              # runs beside production, off the user's path
        model: gpt-4.1-mini
        messages: [...]
      v2:
        status: retired             # kept for history; never serves
        model: gpt-4o-mini
        messages: [...]

Names (prompt, versions) and the experiment id are 1 to 64 characters of letters,
digits, ``.``, ``_`` and ``-``, starting with a letter or digit; quote a version named
like a number (``'1.10'``). Placeholders are ``{name}`` with a declared name; ``{{`` and
``}}`` are literal braces. Testing shares add up to at most 100; production serves the
rest. Unknown keys are errors, so a typo never silently changes what is served.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from closedloop.experiments._parameters import CHECKS, unknown_parameter_fix
from closedloop.experiments._prompt_errors import PromptFileError
from closedloop.experiments._prompt_spec import (
    ROLES,
    STATUSES,
    MessageTemplate,
    PromptSpec,
    PromptVersion,
    Status,
)
from closedloop.experiments._routing import BUCKETS, BUCKETS_PER_PERCENT, bucket_ranges
from closedloop.experiments._templates import TemplateError, placeholders
from closedloop.experiments._yaml_nodes import (
    Fields,
    Node,
    NodeReader,
    ScalarNode,
    SequenceNode,
    composed,
    line_of,
)

SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 1 << 20
"""A prompt file is a few kilobytes; one larger is a mistake (a pasted log, a generated
file) whose load would cost seconds of CPU and memory in a serving process."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_NAME_RULE = "use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_TOP_FIX = "a prompt file is a mapping with name, experiment, variables and versions"
_VERSION_FIX = "a version is a mapping with status, model, messages and optional share, parameters"
_MESSAGES_FIX = "write a list of messages, e.g. - {role: user, content: '{ticket}'}"
_MODEL_FIX = "write the model name, e.g. model: gpt-4o-mini"
_VERSION_HINTS = {name: "model parameters go under parameters:" for name in CHECKS} | {
    "content": "the text goes under messages: as a list of {role, content}"
}


def load_prompt_file(path: Path) -> PromptSpec:
    """The checked prompt in ``path``, or a :class:`PromptFileError` naming the line."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # never more, whatever the file grew to
            if len(data) > MAX_FILE_BYTES:
                size = os.fstat(file.fileno()).st_size
                raise PromptFileError(
                    path,
                    None,
                    None,
                    f"is {size:,} bytes, over the limit of {MAX_FILE_BYTES:,} bytes (1 MiB)",
                    "keep one prompt per file, a few kilobytes; move long reference text "
                    "into the app and pass it as a variable",
                )
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PromptFileError(
            path, None, None, f"cannot be read ({error})", "make it a readable UTF-8 file"
        ) from None
    with composed(path, text) as (reader, root):
        if root is None:
            raise PromptFileError(path, None, None, "is empty", _TOP_FIX)
        return _PromptReader(reader, path).prompt(root)


@dataclass(frozen=True)
class _Version:
    """A version read and checked on its own, before the bucket ranges are known."""

    name: str
    status: Status
    model: str
    parameters: MappingProxyType[str, object]
    messages: tuple[MessageTemplate, ...]
    line: int


class _PromptReader:
    def __init__(self, reader: NodeReader, path: Path) -> None:
        self.r = reader
        self.path = path
        self.declared: dict[str, Node] = {}  # each declared variable's node
        self.used: set[str] = set()  # the placeholders of every version's templates

    def name(self, node: Node, field: str) -> str:
        value = self.r.string(node, field, _NAME_RULE)
        if not _NAME.fullmatch(value):
            self.r.fail(node, field, f"{value!r} is not a valid name", _NAME_RULE)
        return value

    def prompt(self, root: Node) -> PromptSpec:
        fields = self.r.fields(
            root,
            "",
            required={
                "name": f"add name: {self.path.stem} (the file's name)",
                "experiment": f"add an experiment id, e.g. experiment: {self.path.stem}-1",
                "versions": "add versions: with at least one production version",
            },
            optional=("variables",),
            fix=_TOP_FIX,
        )
        name = self.name(fields["name"], "name")
        if name != self.path.stem:
            self.r.fail(
                fields["name"],
                "name",
                f"{name!r} differs from the file name {self.path.name}",
                f"rename the file to {name}{self.path.suffix} or set name: {self.path.stem}",
            )
        experiment = self.name(fields["experiment"], "experiment")
        variables = self.variables(fields.get("variables"))
        versions = self.versions(
            fields["versions"], fields.key_nodes["versions"], name, experiment, variables
        )
        self.check_used()
        return PromptSpec(name, self.path, experiment, variables, versions)

    def check_used(self) -> None:
        """A declared variable no template uses is a mistake: a renamed placeholder, or a
        value the app computes and passes on every request for nothing."""
        for name, node in self.declared.items():
            if name not in self.used:
                self.r.fail(
                    node,
                    "variables",
                    f"{name!r} is declared but no version's messages use it",
                    f"use {{{name}}} in a message, or remove it from variables:",
                )

    def variables(self, node: Node | None) -> tuple[str, ...]:
        fix = "list the names the app passes to select(), e.g. variables: [product, ticket]"
        if node is None:
            return ()
        if not isinstance(node, SequenceNode):
            self.r.wrong_type(node, "variables", "a list", fix)
        names: list[str] = []
        for index, item in enumerate(node.value):
            field = f"variables[{index}]"
            value = self.r.string(item, field, fix)
            if not value.isidentifier():
                self.r.fail(item, field, f"{value!r} is not a name", "use letters, digits and _")
            if value in names:
                self.r.fail(item, field, f"{value!r} is listed twice", "list it once")
            names.append(value)
            self.declared[value] = item
        return tuple(names)

    def versions(
        self, node: Node, key: Node, prompt: str, experiment: str, variables: tuple[str, ...]
    ) -> tuple[PromptVersion, ...]:
        fix = "versions is a mapping from version name to version, e.g. v1: {status: ...}"
        read: list[_Version] = []
        production: tuple[str, Node] | None = None
        testing: list[tuple[str, int]] = []
        for version, key_node, value_node in self.r.entries(node, "versions", fix):
            field = f"versions.{version}"
            if not _NAME.fullmatch(version):
                self.r.fail(key_node, field, f"{version!r} is not a valid name", _NAME_RULE)
            fields = self.r.fields(
                value_node,
                field,
                required={
                    "status": f"add status: one of {', '.join(STATUSES)}",
                    "model": _MODEL_FIX,
                    "messages": _MESSAGES_FIX,
                },
                optional=("share", "parameters"),
                fix=_VERSION_FIX,
                hint=_VERSION_HINTS,
                owner=key_node,
            )
            status = self.status(fields["status"], field)
            if status == "production":
                if production is not None:
                    first, first_node = production
                    self.r.fail(
                        fields["status"],
                        f"{field}.status",
                        f"a second production version ({first} is production, "
                        f"line {line_of(first_node)})",
                        "exactly one version serves production: set the other to testing, "
                        "shadow or retired",
                    )
                production = (version, fields["status"])
            share = self.share(fields, status, key_node, field)
            if share is not None:
                testing.append((version, share))
                total = sum(buckets for _, buckets in testing)
                if total > BUCKETS:
                    self.r.fail(
                        fields["share"],
                        f"{field}.share",
                        f"the testing shares add up to {total / BUCKETS_PER_PERCENT:g} %, "
                        "over 100 %",
                        "lower them to add up to at most 100 (production serves the rest)",
                    )
            read.append(
                _Version(
                    name=version,
                    status=status,
                    model=self.r.string(fields["model"], f"{field}.model", _MODEL_FIX),
                    parameters=self.parameters(fields.get("parameters"), field),
                    messages=self.messages(fields["messages"], field, variables),
                    line=line_of(key_node),
                )
            )
        if production is None:
            self.r.fail(
                key,
                "versions",
                "no version has status production",
                "set status: production on the version that serves every unit not in a test",
            )
        ranges = bucket_ranges(production[0], testing)
        return tuple(
            PromptVersion(
                prompt=prompt,
                experiment=experiment,
                name=version.name,
                status=version.status,
                model=version.model,
                parameters=version.parameters,
                messages=version.messages,
                share=(
                    len(ranges[version.name]) / BUCKETS_PER_PERCENT
                    if version.status == "testing"
                    else None
                ),
                buckets=ranges.get(version.name),
                line=version.line,
            )
            for version in read
        )

    def status(self, node: Node, field: str) -> Status:
        fix = f"use one of {', '.join(STATUSES)}"
        value = self.r.string(node, f"{field}.status", fix)
        for status in STATUSES:
            if value == status:
                return status
        self.r.fail(node, f"{field}.status", f"{value!r} is not a status", fix)

    def share(self, fields: Fields, status: Status, version: Node, field: str) -> int | None:
        """A testing version's share in buckets; None for other statuses."""
        node = fields.get("share")
        fix = "write the percent of units as a number, e.g. share: 20"
        if status != "testing":
            if node is not None:
                self.r.fail(
                    node,
                    f"{field}.share",
                    f"only testing versions have a share, and this one is {status}",
                    "remove it (production serves every unit no testing version takes)",
                )
            return None
        if node is None:
            self.r.fail(version, f"{field}.share", "missing for a testing version", fix)
        value = self.r.value(node, f"{field}.share", fix)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.r.wrong_type(node, f"{field}.share", "a number", fix)
        # No float() nor :g on the value yet: a 400-digit int overflows both; NaN and the
        # infinities fail the comparison.
        if not 0 < value <= 100:
            self.r.fail(
                node, f"{field}.share", f"{_shown(node)} is not above 0 and at most 100", fix
            )
        buckets = round(value * BUCKETS_PER_PERCENT)
        if not math.isclose(buckets, value * BUCKETS_PER_PERCENT, abs_tol=1e-6):
            self.r.fail(
                node,
                f"{field}.share",
                f"{value:g} is finer than the 0.01 % steps routing has",
                "round it to two decimals",
            )
        return buckets

    def parameters(self, node: Node | None, field: str) -> MappingProxyType[str, object]:
        fix = "parameters is a mapping, e.g. parameters: {temperature: 0.2}"
        if node is None:
            return MappingProxyType({})
        found: dict[str, object] = {}
        for key, key_node, value_node in self.r.entries(node, f"{field}.parameters", fix):
            where = f"{field}.parameters.{key}"
            check = CHECKS.get(key)
            if check is None:
                self.r.fail(key_node, where, "unknown parameter", unknown_parameter_fix(key))
            value = self.r.value(value_node, where, "write a plain YAML value, without a tag")
            problem = check(value)
            if problem is not None:
                self.r.fail(
                    value_node, where, f"{_shown(value_node)} is not valid", f"it {problem}"
                )
            found[key] = value
        return MappingProxyType(found)

    def messages(
        self, node: Node, field: str, variables: tuple[str, ...]
    ) -> tuple[MessageTemplate, ...]:
        if not isinstance(node, SequenceNode):
            self.r.wrong_type(node, f"{field}.messages", "a list", _MESSAGES_FIX)
        if not node.value:
            self.r.fail(node, f"{field}.messages", "is empty", _MESSAGES_FIX)
        templates = []
        for index, item in enumerate(node.value):
            where = f"{field}.messages[{index}]"
            fields = self.r.fields(
                item,
                where,
                required={
                    "role": f"add role: one of {', '.join(ROLES)}",
                    "content": "add content: the message text, with {placeholders}",
                },
                optional=(),
                fix="a message is a mapping with role and content",
            )
            role = self.r.string(fields["role"], f"{where}.role", f"use one of {', '.join(ROLES)}")
            if role not in ROLES:
                self.r.fail(
                    fields["role"],
                    f"{where}.role",
                    f"{role!r} is not a role",
                    f"use one of {', '.join(ROLES)}",
                )
            content = self.r.string(fields["content"], f"{where}.content", "write the text")
            self.check_placeholders(fields["content"], content, f"{where}.content", variables)
            templates.append(MessageTemplate(role, content))
        return tuple(templates)

    def check_placeholders(
        self, node: Node, content: str, field: str, variables: tuple[str, ...]
    ) -> None:
        # In a literal block (|) the text starts on the line after the indicator, line by
        # line, so a placeholder's own line is known; other styles fold lines, so they point
        # at the start of the value.
        literal = isinstance(node, ScalarNode) and node.style == "|"

        def at(offset: int) -> int:
            return line_of(node) + 1 + offset if literal else line_of(node)

        try:
            found = placeholders(content)
        except TemplateError as error:
            raise PromptFileError(
                self.path, at(error.line_offset), field, error.problem, error.fix
            ) from None
        for placeholder in found:
            self.used.add(placeholder.name)
            if placeholder.name not in variables:
                declared = ", ".join(variables) if variables else "none yet"
                raise PromptFileError(
                    self.path,
                    at(placeholder.line_offset),
                    field,
                    f"{{{placeholder.name}}} is not a declared variable",
                    f"add it to variables: (declared: {declared}), or correct the name",
                )


def _shown(node: Node) -> str:
    """A scalar's text as written, cut to fit one message line."""
    if not isinstance(node, ScalarNode):
        return "this value"
    text = str(node.value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"
