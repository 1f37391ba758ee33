#!/usr/bin/env python3
"""Prose of "The Rust Programming Language" as plain ASCII text, for training the demo model.

The book ships as HTML with the Rust toolchain's documentation (the `rust-docs` rustup
component, installed by default; `rustup component add rust-docs` if it is missing) under
`$(rustc --print sysroot)/share/doc/rust/html/book/`. It is licensed MIT OR Apache-2.0.

This module keeps the prose of every chapter and appendix (paragraphs, list items, headings,
notes and listing captions) and drops code blocks, tables, navigation and scripts. Text is
mapped to printable ASCII plus newline (curly quotes become straight quotes, dashes become
hyphens, other characters are transliterated or dropped); paragraphs are one line each,
separated by a blank line.

The trainer encodes each chapter separately and closes it with [SEP], as the HF tokenizer
does with one text. Split (deterministic): the chapter files are sorted by name; every HOLDOUT_EVERY-th one
(index % HOLDOUT_EVERY == HOLDOUT_EVERY // 2) is held out, the rest is training text.

    python tools/train/corpus.py --out DIR    # writes DIR/train.txt and DIR/heldout.txt
"""

import argparse
import html.parser
import os
import re
import subprocess
import sys
import unicodedata

# Printable ASCII and newline: the model's characters (ids 7.. in this order).
CHARACTERS = ["\n"] + [chr(c) for c in range(32, 127)]
HOLDOUT_EVERY = 10

BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "figcaption", "blockquote", "dt", "dd"}
SKIP = {"pre", "script", "style", "svg", "table", "nav", "button", "kbd"}
SKIP_CLASSES = {"filename", "file-name", "ferris-explain", "boring"}
VOID = {"br", "img", "hr", "meta", "link", "input", "wbr", "source"}

TRANSLIT = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2014": " - ", "\u2013": "-", "\u2012": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "\u2192": "->", "\u2190": "<-", "\u21d2": "=>", "\u00d7": "x",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u200b": "",
    "\u2212": "-", "\u2022": "*", "\u00b7": "*", "\u2264": "<=", "\u2265": ">=", "\u2260": "!=",
}


class _Prose(html.parser.HTMLParser):
    """Collects the text of block elements inside <main>, skipping code and tables."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.in_main = 0
        self.skip = []  # stack of tags whose subtree is skipped
        self.buf = []
        self.blocks = []

    def flush(self):
        text = " ".join("".join(self.buf).split())
        if text:
            self.blocks.append(text)
        self.buf = []

    def handle_starttag(self, tag, attrs):
        if tag == "main":
            self.in_main += 1
            return
        if not self.in_main or tag in VOID:
            return
        cls = set((dict(attrs).get("class") or "").split())
        if self.skip or tag in SKIP or cls & SKIP_CLASSES:
            self.skip.append(tag)
            return
        if tag in BLOCKS:
            self.flush()

    def handle_endtag(self, tag):
        if tag == "main":
            self.flush()
            self.in_main = max(0, self.in_main - 1)
            return
        if not self.in_main or tag in VOID:
            return
        if self.skip:
            if self.skip[-1] == tag:
                self.skip.pop()
            return
        if tag in BLOCKS:
            self.flush()

    def handle_data(self, data):
        if self.in_main and not self.skip:
            self.buf.append(data)


def to_ascii(text):
    """Maps text onto CHARACTERS: transliterates what it can, drops the rest."""
    out = []
    for ch in text:
        if ch in TRANSLIT:
            out.append(TRANSLIT[ch])
        elif ch == "\n" or " " <= ch <= "~":
            out.append(ch)
        else:
            base = unicodedata.normalize("NFKD", ch)
            out.append("".join(c for c in base if " " <= c <= "~"))
    return "".join(out)


def book_dir():
    """The book's HTML directory inside the active toolchain's documentation."""
    try:
        sysroot = subprocess.run(
            ["rustc", "--print", "sysroot"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"cannot run `rustc --print sysroot` ({e}); install Rust with rustup")
    path = os.path.join(sysroot, "share", "doc", "rust", "html", "book")
    if not os.path.isfile(os.path.join(path, "ch01-00-getting-started.html")):
        sys.exit(f"the Rust book is not at {path}: run `rustup component add rust-docs`")
    return path


def chapter_files(book):
    """Chapter and appendix pages in name order, without the redirect stubs of old names."""
    out = []
    for name in sorted(os.listdir(book)):
        if not re.fullmatch(r"(ch\d\d-\d\d|appendix-\d\d)[-\w]*\.html", name):
            continue
        with open(os.path.join(book, name), encoding="utf-8") as f:
            page = f.read()
        if 'http-equiv="refresh"' in page or "<main>" not in page:
            continue
        out.append((name, page))
    return out


def chapter_text(page):
    """The prose of one page: one paragraph per line, blank lines between them."""
    p = _Prose()
    p.feed(page)
    p.close()
    blocks = [" ".join(to_ascii(b).split()) for b in p.blocks]
    return "\n\n".join(b for b in blocks if b)


def build(book=None):
    """(train chapters, held-out chapters, held-out file names): lists of chapter texts."""
    book = book or book_dir()
    train, held, held_names = [], [], []
    for i, (name, page) in enumerate(chapter_files(book)):
        text = chapter_text(page)
        if i % HOLDOUT_EVERY == HOLDOUT_EVERY // 2:
            held.append(text)
            held_names.append(name)
        else:
            train.append(text)
    return train, held, held_names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory for train.txt and heldout.txt")
    ap.add_argument("--book", help="the book's HTML directory (default: from rustc's sysroot)")
    a = ap.parse_args()
    train, held, names = build(a.book)
    train, held = ("\n\n".join(x) + "\n" for x in (train, held))
    os.makedirs(a.out, exist_ok=True)
    for fname, text in (("train.txt", train), ("heldout.txt", held)):
        with open(os.path.join(a.out, fname), "w", encoding="ascii", newline="\n") as f:
            f.write(text)
    print(f"train: {len(train)} characters; held out: {len(held)} characters from {names}")


if __name__ == "__main__":
    main()
