"""A small Dockerfile reader: instructions with continuation lines joined and heredoc bodies kept
apart, ARG defaults substituted into FROM, and stages split. Enough for the checks the image
tests make; no build is run (no container runtime or registry is reachable here)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

HEREDOC = re.compile(r"<<-?['\"]?(?P<tag>[A-Za-z_][A-Za-z0-9_]*)['\"]?")
VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Instruction:
    keyword: str
    args: str
    heredocs: list[str] = field(default_factory=list)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(path: Path) -> list[Instruction]:
    lines = path.read_text().splitlines()
    out: list[Instruction] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        text = line
        while text.endswith("\\") and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                continue
            text = text[:-1] + " " + nxt.strip()
        keyword, _, args = text.strip().partition(" ")
        ins = Instruction(keyword.upper(), args.strip())
        for match in HEREDOC.finditer(args):
            body = []
            while i < len(lines) and lines[i].strip() != match["tag"]:
                body.append(lines[i])
                i += 1
            i += 1
            ins.heredocs.append("\n".join(body) + "\n")
        out.append(ins)
    return out


def substitute(text: str, env: dict[str, str]) -> str:
    return VAR.sub(lambda m: env.get(m["name"] or m["bare"], m.group(0)), text)


def stages(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with FROM resolved through those defaults."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for ins in parse(path):
        if ins.keyword == "ARG" and not result:
            name, _, default = ins.args.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        elif ins.keyword == "FROM":
            parts = substitute(ins.args, global_args).split()
            parts = [p for p in parts if not p.startswith("--platform")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            result.append(Stage(parts[0], name))
        elif result:
            result[-1].instructions.append(ins)
    return global_args, result


def exec_form(args: str) -> list[str]:
    """ENTRYPOINT/CMD in JSON exec form, or shell form split like a shell would."""
    args = args.strip()
    if args.startswith("["):
        import json

        return json.loads(args)
    return shlex.split(args)
