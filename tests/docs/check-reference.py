#!/usr/bin/env python3
"""Holds docs/resembledetectsink.md against the element and its sources.

What the reference marks, and this test reads:

- the tables of the sections "## Pads", "## Properties" and "## Signals":
  every row whose first cell is a backticked name, | `name` | ...; a
  property row may name several, | `a`, `b` | ... (a table ends at the next
  heading);
- structures: a heading ### `resemble-detect-...` anywhere in the page.

It fails when
- a property, signal or pad template of the element (element-names, which
  reads the built plugin's class) has no row, or a row names one that the
  element does not have;
- a "resemble-detect-*" name in gst/*.c or gst/*.h has no heading, or a
  "resemble-detect-*" name anywhere in the reference is nowhere in gst/.
"""

import argparse
import pathlib
import re
import subprocess
import sys

NAME = re.compile(r"resemble-detect-[a-z0-9]+(?:-[a-z0-9]+)*")
STRUCTURE_HEADING = re.compile(r"^### `(resemble-detect-[a-z0-9-]+)`\s*$")
FIRST_CELL = re.compile(r"^`([^`\s]+)`(?:, `([^`\s]+)`)*$")
TABLES = {"Pads": "pad", "Properties": "property", "Signals": "signal"}


def read_reference(path):
    """-> ({kind: {name: line number}}, {structure: line}, {name: line}, errors)"""
    rows = {kind: {} for kind in TABLES.values()}
    headings, mentioned, errors = {}, {}, []
    section, in_table = None, False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        for name in NAME.findall(line):
            mentioned.setdefault(name, number)
        if line.startswith("#"):
            match = STRUCTURE_HEADING.match(line)
            if match:
                headings.setdefault(match.group(1), number)
            if line.startswith("## "):
                section = line[3:].strip()
            # the table of a section is the one right under its "## " heading
            in_table = line.startswith("## ") and section in TABLES
            continue
        if not in_table or not line.startswith("| `"):
            continue
        kind = TABLES[section]
        cell = line.split("|")[1].strip()
        if not FIRST_CELL.match(cell):
            errors.append(f"{path}:{number}: a {kind} row whose first cell is "
                          f"not `name` or `name`, `name`: {cell}")
            continue
        for name in re.findall(r"`([^`]+)`", cell):
            if name in rows[kind]:
                errors.append(f"{path}:{number}: {kind} {name} has a row "
                              f"already (line {rows[kind][name]})")
            rows[kind].setdefault(name, number)
    for kind in rows:
        if not rows[kind]:
            errors.append(f"{path}: no {kind} row found (is the section "
                          f"heading still there?)")
    return rows, headings, mentioned, errors


def read_element(lister, plugin_dir):
    out = subprocess.run([lister], check=True, capture_output=True,
                         text=True).stdout
    names = {kind: set() for kind in TABLES.values()}
    plugin = None
    for line in out.splitlines():
        kind, _, name = line.partition(" ")
        if kind == "plugin":
            plugin = name
        elif kind in names:
            names[kind].add(name)
    if plugin_dir and (plugin is None or
                       pathlib.Path(plugin).parent.resolve() !=
                       pathlib.Path(plugin_dir).resolve()):
        sys.exit(f"the element came from {plugin}, not from {plugin_dir}: "
                 "check GST_PLUGIN_PATH_1_0 and GST_REGISTRY_1_0")
    return names


def read_sources(directory):
    found = {}
    for path in sorted(directory.glob("*.[ch]")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name in NAME.findall(line):
                found.setdefault(name, f"{path.name}:{number}")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lister", required=True)
    parser.add_argument("--reference", required=True, type=pathlib.Path)
    parser.add_argument("--sources", required=True, type=pathlib.Path)
    parser.add_argument("--plugin-dir")
    args = parser.parse_args()

    rows, headings, mentioned, problems = read_reference(args.reference)
    element = read_element(args.lister, args.plugin_dir)
    sources = read_sources(args.sources)

    for kind in TABLES.values():
        for name in sorted(element[kind] - rows[kind].keys()):
            problems.append(f"{kind} {name}: in the element, not in the "
                            f"reference's table")
        for name in sorted(rows[kind].keys() - element[kind]):
            problems.append(f"{kind} {name}: in the reference (line "
                            f"{rows[kind][name]}), not in the element")
    for name in sorted(sources.keys() - headings.keys()):
        problems.append(f"structure {name}: in gst/ ({sources[name]}), "
                        f"without a ### `{name}` heading in the reference")
    for name in sorted(mentioned.keys() - sources.keys()):
        problems.append(f"structure {name}: in the reference (line "
                        f"{mentioned[name]}), nowhere in gst/")

    counts = ", ".join(f"{k}: {len(element[k])}" for k in TABLES.values())
    print(f"element: {counts}; gst/: {len(sources)} structure names; "
          f"reference: {len(headings)} structure headings")
    for problem in problems:
        print("FAIL:", problem)
    if problems:
        print(f"{len(problems)} difference(s) between {args.reference} and "
              "the code")
        return 1
    print("the reference and the code agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
