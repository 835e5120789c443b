#!/usr/bin/env python3
"""Check the intra-repository links of the project's Markdown files.

For every [text](target) link whose target is not an external URL: the file must exist
(relative to the linking file), and a #fragment must be the GitHub-style anchor of a heading
in the target file (or in the linking file for a bare #fragment). Prints each broken link and
exits 1 if there is any. Not wired into CI; run by hand:

    python3 scripts/check-doc-links.py [ROOT]
"""
import os
import re
import sys

LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def github_anchor(text):
    """GitHub's heading anchor: code spans and links reduced to their text, lower case,
    punctuation other than - and _ removed (emphasis asterisks with it), spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # \w keeps letters, digits and _ (Unicode)
    return text.replace(" ", "-")


def lines_outside_code(path):
    inside = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if FENCE.match(line):
                inside = not inside
                continue
            if not inside:
                yield number, line


def anchors_of(path, cache={}):
    if path not in cache:
        seen = {}
        anchors = set()
        for _, line in lines_outside_code(path):
            m = HEADING.match(line)
            if not m:
                continue
            base = github_anchor(m.group(2))
            n = seen.get(base, 0)
            anchors.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
        cache[path] = anchors
    return cache[path]


def markdown_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in ("build", "node_modules")]
        for name in filenames:
            if name.endswith(".md"):
                yield os.path.join(dirpath, name)


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    broken = 0
    checked = 0
    for path in sorted(markdown_files(root)):
        for number, line in lines_outside_code(path):
            line = re.sub(r"`[^`]*`", "", line)  # links inside inline code are not links
            for m in list(LINK.finditer(line)) + list(IMAGE.finditer(line)):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                checked += 1
                file_part, _, fragment = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
                where = f"{os.path.relpath(path, root)}:{number}"
                if not os.path.exists(dest):
                    print(f"{where}: {target}: no such file")
                    broken += 1
                    continue
                if fragment and dest.endswith(".md") and fragment not in anchors_of(dest):
                    print(f"{where}: {target}: no heading with anchor #{fragment} in {os.path.relpath(dest, root)}")
                    broken += 1
    print(f"{checked} links checked, {broken} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
