"""Rule sets as data: named SQL predicates over quality-signal columns.

Each YAML file here (gopher, c4, rpv1, fineweb) declares `rules` (name, sql, description,
citation, optional note and level) and `sets` (a set name -> rule names, in evaluation order). A
rule's `sql` is what a KEPT document satisfies; a NULL result fails (a missing signal cannot vouch
for a document). `level: line` rules are predicates over one line: every `rps_lines_*` name in
them stands for that line's score, and a line is kept when all line rules pass.

Users add rules the same way: a YAML file of their own (`--rules path/to/mine.yaml`) or one raw
predicate (`name=SQL`). Unknown keys are errors, so a typo never silently disables a rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from redpajama.errors import UserError

RULES_DIR = Path(__file__).parent
LEVELS = ("document", "line")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_LINE_SIGNAL = re.compile(r"\b(rps_lines_[a-z_]+)\b")
_RULE_KEYS = {"name", "sql", "description", "citation", "note", "level"}
_FILE_KEYS = {"sets", "rules"}


@dataclass(frozen=True, kw_only=True)
class Rule:
    name: str  # the drop reason, the stats key and the provenance value
    sql: str
    level: str = "document"
    description: str = ""
    citation: str = ""
    note: str = ""  # where RPv2's signal differs from the paper's definition

    def line_predicate(self, index: str = "i") -> str:
        """The line rule with each `rps_lines_x` replaced by the score of line `index` (1-based)."""
        return _LINE_SIGNAL.sub(lambda m: f'"{m.group(1)}"[{index}].score', self.sql)

    def line_signals(self) -> list[str]:
        return sorted(set(_LINE_SIGNAL.findall(self.sql)))


@dataclass(frozen=True, kw_only=True)
class RuleFile:
    rules: dict[str, Rule]
    sets: dict[str, tuple[str, ...]]


def _rule(data: Any, where: str) -> Rule:
    if not isinstance(data, dict):
        raise UserError(f"{where}: a rule must be a mapping with name and sql")
    unknown = sorted(set(data) - _RULE_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}", f"known keys: {sorted(_RULE_KEYS)}")
    for key in ("name", "sql"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise UserError(f"{where}: every rule needs a non-empty '{key}'")
    rule = Rule(**{k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()})
    if not _NAME.match(rule.name):
        raise UserError(
            f"{where}: bad rule name {rule.name!r}", "letters, digits, _ . - ; start with a letter"
        )
    if rule.level not in LEVELS:
        raise UserError(f"{where}: rule {rule.name}: level must be one of {LEVELS}")
    if rule.level == "line" and not rule.line_signals():
        raise UserError(f"{where}: line rule {rule.name} uses no rps_lines_* signal")
    return rule


def load_file(path: Path) -> RuleFile:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read rule file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with 'rules' (and optionally 'sets')")
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {unknown}", f"known keys: {sorted(_FILE_KEYS)}")
    rules: dict[str, Rule] = {}
    for n, item in enumerate(data.get("rules") or []):
        rule = _rule(item, f"{path} rule #{n + 1}")
        if rule.name in rules:
            raise UserError(f"{path}: rule {rule.name} is defined twice")
        rules[rule.name] = rule
    sets = {str(k): tuple(v) for k, v in (data.get("sets") or {path.stem: list(rules)}).items()}
    for set_name, names in sets.items():
        missing = [n for n in names if n not in rules]
        if missing:
            raise UserError(f"{path}: set {set_name} names unknown rule(s) {missing}")
    return RuleFile(rules=rules, sets=sets)


def shipped() -> dict[str, list[Rule]]:
    """Every shipped set by name: gopher, gopher-natlang, gopher-rep, c4, c4-lines, rpv1, fineweb."""
    found: dict[str, list[Rule]] = {}
    for path in sorted(RULES_DIR.glob("*.yaml")):
        loaded = load_file(path)
        for set_name, names in loaded.sets.items():
            found[set_name] = [loaded.rules[n] for n in names]
    return found


def parse_inline(text: str) -> Rule:
    """`name=SQL` (document level) or `line:name=SQL` (a line rule)."""
    name, sep, sql = text.partition("=")
    if not sep:
        raise UserError(
            f"bad --rule {text!r}", 'write it as "name=SQL predicate", e.g. "long=rps_doc_word_count > 100"'
        )
    level = "document"
    if name.startswith("line:"):
        level, name = "line", name.removeprefix("line:")
    return _rule({"name": name.strip(), "sql": sql, "level": level}, "--rule")


def resolve(specs: Iterable[str], inline: Iterable[str] = ()) -> list[Rule]:
    """Rules from set names or YAML paths (in order), then inline `name=SQL` rules; no repeats."""
    available = shipped()
    chosen: list[Rule] = []
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        if spec in available:
            chosen += available[spec]
        elif spec.endswith((".yaml", ".yml")):
            loaded = load_file(Path(spec))
            stem = Path(spec).stem
            sets = loaded.sets if stem not in loaded.sets else {stem: loaded.sets[stem]}
            chosen += [loaded.rules[n] for names in sets.values() for n in names]
        else:
            raise UserError(f"unknown rule set {spec!r}", f"shipped sets: {', '.join(sorted(available))}")
    chosen += [parse_inline(text) for text in inline]
    unique: dict[str, Rule] = {}
    for rule in chosen:
        if rule.name in unique and unique[rule.name] != rule:
            raise UserError(f"two different rules are named {rule.name}")
        unique.setdefault(rule.name, rule)
    return list(unique.values())
