# tests/py/test_layering.py: no room under src/ includes a room above it.
#
# What: the README's "Layering" table (between the layering:begin/end markers) gives every room
# of src/ a level; a room may include headers of rooms of a strictly lower level, and its own,
# or none at all when its row says "no other room" (src/bolt, a standalone library). Every
# `#include "<dir>/..."` line under src/ is checked against it; <dir> that is not a room must be
# a directory of generated protobuf-c code (proto/<dir>/, or google/ from libprotobuf-c).
# Why: the layering is a rule of the project that the compiler does not see; an upward include
# builds fine and quietly ties a base room to the worker. The table is read from the README so
# the rule is written once, where a newcomer reads it.
# How: plain text parsing, no build needed; each failure names the file, the line and both
# levels.
import os
import re

from cgw_worker import ROOT

INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)/[^"]+"', re.M)
ROW = re.compile(r"^\|\s*(\d+)\s*\|([^|]*)\|([^|]*)\|", re.M)
GENERATED = {"google"}   # google/protobuf/*.pb-c.h comes with libprotobuf-c


def layering_table(readme_text):
    """{room: (level, may_include_others)} from the README's layering table."""
    m = re.search(r"<!-- layering:begin -->(.*?)<!-- layering:end -->", readme_text, re.S)
    assert m, "README.md has no <!-- layering:begin --> ... <!-- layering:end --> table"
    table = {}
    for level, rooms, rule in ROW.findall(m.group(1)):
        for room in re.findall(r"`([a-z0-9_]+)`", rooms):
            assert room not in table, "room %s is in the layering table twice" % room
            table[room] = (int(level), "no other room" not in rule)
    assert table, "the layering table has no rows"
    return table


def violations(table, sources, generated):
    """sources: {path: text} of files under src/<room>/. Returns a list of messages."""
    out = []
    unknown = set()
    for path, text in sorted(sources.items()):
        room = path.split("/")[1]
        if room not in table:
            if room not in unknown:
                out.append("%s: room src/%s/ is not in the README's layering table" % (path, room))
            unknown.add(room)
            continue
        level, others_ok = table[room]
        for m in INCLUDE.finditer(text):
            dep = m.group(1)
            line = text.count("\n", 0, m.start()) + 1
            if dep == room:
                continue
            if dep not in table:
                if dep not in generated:
                    out.append("%s:%d: includes %s/, which is neither a room nor generated code"
                               % (path, line, dep))
                continue
            if not others_ok:
                out.append("%s:%d: src/%s/ includes no other room, but includes %s/"
                           % (path, line, room, dep))
            elif table[dep][0] >= level:
                out.append("%s:%d: %s (level %d) includes %s (level %d): not below it"
                           % (path, line, room, level, dep, table[dep][0]))
    return out


def read_sources():
    sources = {}
    src = os.path.join(ROOT, "src")
    for dirpath, _, names in os.walk(src):
        for n in names:
            if n.endswith((".c", ".h")):
                p = os.path.join(dirpath, n)
                with open(p, encoding="utf-8") as f:
                    sources[os.path.relpath(p, ROOT)] = f.read()
    return sources


def generated_dirs():
    return GENERATED | set(os.listdir(os.path.join(ROOT, "proto")))


def test_no_room_includes_one_above_it():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        table = layering_table(f.read())
    sources = read_sources()
    assert sources, "no sources found under src/"
    bad = violations(table, sources, generated_dirs())
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_every_room_of_the_table_exists():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        table = layering_table(f.read())
    missing = [r for r in table if not os.path.isdir(os.path.join(ROOT, "src", r))]
    assert not missing, "rooms in the layering table without a src/ folder: %s" % missing


def test_the_check_catches_an_upward_include():
    """The checker itself: an upward include, a same-level include, an include into a
    standalone room and an unknown room are each reported; a downward one is not."""
    table = {"log": (1, True), "http": (1, True), "bolt": (1, False), "config": (2, True),
             "pipeline": (6, True)}
    sources = {
        "src/log/log.c": '#include "log/log.h"\n#include "config/config.h"\n',
        "src/bolt/conn.c": '#include "log/log.h"\n',
        "src/config/config.c": '#include "log/log.h"\n#include "receipts/v1/x.pb-c.h"\n',
        "src/pipeline/p.c": '#include "config/config.h"\n#include "pipeline/p.h"\n',
        "src/newroom/n.c": '#include "log/log.h"\n',
        "src/newroom/n.h": '#include "log/log.h"\n',
        "src/config/c2.c": '#include "nowhere/x.h"\n',
        "src/http/url.c": '#include "log/log.h"\n',
    }
    bad = violations(table, sources, {"receipts", "google"})
    assert any("src/log/log.c:2: log (level 1) includes config (level 2)" in b for b in bad), bad
    assert any("src/bolt/conn.c:1: src/bolt/ includes no other room" in b for b in bad), bad
    assert any("src/newroom/ is not in the README's layering table" in b for b in bad), bad
    assert any("includes nowhere/, which is neither" in b for b in bad), bad
    assert any("src/http/url.c:1: http (level 1) includes log (level 1)" in b for b in bad), bad
    assert len(bad) == 5, bad
