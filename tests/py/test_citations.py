# tests/py/test_citations.py: what the repository cites, it carries.
#
# What: in every tracked file under src/, tests/, tools/, scripts/, docs/, bench/, deploy/,
# config/ and in README.md, Makefile and Dockerfile,
#   - a cited document (a path like docs/..., ../anything, or any name ending in .md) must be a
#     tracked file of the repository, resolved from the repository root or from the citing
#     file's folder (untracked files do not count: a clone would not have them);
#   - a cited section ("contract §2", "docs/bolt.md §7", "contract section 4", "contract §1-§7")
#     must be a "## §N" heading of that document ("contract" alone means docs/contract.md);
#   - no machine path (/work/, /home/, /root/...) appears at all.
# Why: a comment that points outside the clone (a brief, a shared folder) is a dead end for the
# next reader; the project keeps what its code cites (issue 13, item 5).
# How: regular expressions over the text. Paths under var/ and build/ are outputs, not
# documents, and are not resolved; OUTPUTS lists the few bare output names a tool writes.
import os
import re
import subprocess

from cgw_worker import ROOT

SCOPE = re.compile(r"^(src|tests|tools|scripts|docs|bench|deploy|config)/|^(README\.md|Makefile|Dockerfile)$")
BINARY = (".png", ".jpg", ".gz", ".tar", ".pb", ".bin", ".jar")
DOC = re.compile(r"(?<![\w./$\-{}])((?:\.\./)+[\w.\-]+(?:/[\w.\-]+)*|docs/[\w.\-/]*[\w]|"
                 r"(?:[\w.\-]+/)*[\w.\-]+\.md)(?![\w/])")
SECTION = re.compile(r"\b(docs/contract\.md|docs/bolt\.md|contract)\W{0,3}"
                     r"((?:§|sections?\s+)\d+(?:\s*(?:[-–,]|and)\s*§?\d+)*)", re.I)
MACHINE = re.compile(r"(?<![\w.])/(?:work|home|root|Users)/[\w.]")
OUTPUTS = {("tools/demo.py", "status.md")}   # written into var/demo/ by the demo
HEADING = re.compile(r"^## §(\d+)\b", re.M)


def tracked_files():
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True, check=True)
    names = [n.decode() for n in out.stdout.split(b"\0") if n]
    # This file is left out: its examples of bad citations are there on purpose.
    return [n for n in names if SCOPE.search(n) and not n.endswith(BINARY)
            and n != "tests/py/test_citations.py"]


def tracked_paths(root):
    """Every tracked file and every folder holding one: what a clone carries (an untracked
    file in the working tree does not count)."""
    out = subprocess.run(["git", "-C", root, "ls-files", "-z"], capture_output=True, check=True)
    paths = set()
    for n in (n.decode() for n in out.stdout.split(b"\0") if n):
        while n:
            paths.add(n)
            n = os.path.dirname(n)
    return paths


def resolve(carried, citing, cited):
    """The repository path a citation names, or None when it names nothing in the repo."""
    for base in ("", os.path.dirname(citing)):
        p = os.path.normpath(os.path.join(base, cited))
        if p in carried:
            return p
    return None


def sections(root, doc):
    path = os.path.join(root, doc)
    if not os.path.exists(path):
        return set()
    with open(path, encoding="utf-8") as f:
        return {int(n) for n in HEADING.findall(f.read())}


def problems(root, texts):
    """texts: {repo path: text}. Returns a list of messages, one per bad citation."""
    out = []
    carried = tracked_paths(root)
    for name, text in sorted(texts.items()):
        def where(m):
            return "%s:%d" % (name, text.count("\n", 0, m.start()) + 1)
        for m in MACHINE.finditer(text):
            out.append("%s: machine path %r" % (where(m), text[m.start():m.start() + 30].split()[0]))
        for m in DOC.finditer(text):
            cited = m.group(1).rstrip(".")
            if cited.startswith(("var/", "build/")) or (name, cited) in OUTPUTS:
                continue
            if resolve(carried, name, cited) is None:
                out.append("%s: cites %s, which is not in the repository" % (where(m), cited))
        for m in SECTION.finditer(text):
            doc = m.group(1).lower()
            doc = "docs/contract.md" if doc == "contract" else doc
            have = sections(root, doc)
            for n in (int(x) for x in re.findall(r"\d+", m.group(2))):
                if n not in have:
                    out.append("%s: cites %s §%d, which has no such section" % (where(m), doc, n))
    return out


def read_texts(root, names):
    texts = {}
    for n in names:
        try:
            with open(os.path.join(root, n), encoding="utf-8") as f:
                texts[n] = f.read()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
    return texts


def test_every_cited_document_is_in_the_repository():
    names = tracked_files()
    assert "README.md" in names and any(n.startswith("src/") for n in names)
    bad = problems(ROOT, read_texts(ROOT, names))
    assert not bad, "citations of what the repository does not carry:\n" + "\n".join(bad)


def test_the_check_catches_missing_documents(tmp_path):
    """The checker itself, on a scratch tree: each kind of bad citation is reported once,
    and good ones are not."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "contract.md").write_text("# c\n## §1 One\n## §2 Two\n")
    (tmp_path / "src" / "x").mkdir(parents=True)
    (tmp_path / "src" / "x" / "README.md").write_text("x\n")
    (tmp_path / "docs" / "untracked.md").write_text("not added\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "docs/contract.md", "src/x/README.md"],
                   check=True)
    texts = {
        "src/x/ok.c": "/* docs/contract.md §2; contract §1-§2; see README.md; var/demo/s.md */",
        "src/x/a.c": "/* the brief: ../shared/contracts/README.md */",
        "src/x/b.c": "/* see docs/missing.md */",
        "src/x/c.c": "/* contract §9 */",
        "src/x/d.py": "# printed from /work/shared/research/x.txt",
        "src/x/e.c": "/* see docs/untracked.md */",
    }
    bad = problems(str(tmp_path), texts)
    assert any("src/x/a.c:1: cites ../shared/contracts/README.md" in b for b in bad), bad
    assert any("src/x/b.c:1: cites docs/missing.md" in b for b in bad), bad
    assert any("src/x/c.c:1: cites docs/contract.md §9" in b for b in bad), bad
    assert any("src/x/d.py:1: machine path" in b for b in bad), bad
    assert any("src/x/e.c:1: cites docs/untracked.md" in b for b in bad), bad
    assert len(bad) == 5, bad
