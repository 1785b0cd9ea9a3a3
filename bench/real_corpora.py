"""Build two more real-text topic benchmarks from this machine's own files.

    python bench/real_corpora.py manpages --out DIR [--seed N] [--train-rows N]
    python bench/real_corpora.py works-with --out DIR --translations FILE [--train-rows N]

Both write the files of bench/real_text.py (columns `text`, `label`, `scenario`):
`train.csv` (known topics), `holdout.csv` (the rest of the known topics: the same
distribution, for false alarms) and `unseen_topic.csv` (topics held back from
training, for detections). They exist to test drift signals on more than one kind
of text (issue 29):

* `manpages`: the NAME line of every installed manual page (`apropos -l -s N .`,
  "name - description"), labelled with its section. Known: 1 (user commands), 2
  (system calls), 3 (library functions), 8 (administration); held back: 4
  (devices), 5 (file formats), 7 (overviews, conventions, SQL commands). Terse text,
  nothing like package descriptions. Section 1 is capped at `--cap` rows, which
  would otherwise be 80% of the rows.
* `works-with`: Debian package descriptions (the text of bench/real_text.py)
  labelled by their debtags `works-with::` facet, for packages with exactly one.
  Known: five facets (text, audio, mail, db, software:source), as in the user
  report of issue 29; held back: every other facet with enough packages (file,
  image, video, font, archive, dictionary, logfile, ...). Same writers, same form,
  only the subject differs: topics close in style, and some close in subject (video
  to audio, dictionary and logfile to text).

Texts are deduplicated under training's normal form; a text under two labels is
dropped. The output depends only on the machine's files and `--seed`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
from real_text import (
    IndexUnavailable,
    dumpavail,
    load_packages,
    one_per_source,
    read_index_file,
    split_known,
    stanzas,
    unique_texts,
    write_scenarios,
)

from refit.training.normalize import normalize_text

Row = tuple[str, str]  # (text, label)

MAN_KNOWN: Final = ("1", "2", "3", "8")
MAN_UNSEEN: Final = ("4", "5", "7")
NAME_LINE: Final = re.compile(r"^(?P<name>\S+) \((?P<section>\d)[^)]*\)\s+- (?P<what>.+)$")

WORKS_WITH_KNOWN: Final = ("text", "audio", "mail", "db", "software:source")
WORKS_WITH_LEFT_OUT: Final = ("TODO",)  # untagged in all but name
MIN_UNSEEN_PACKAGES: Final = 20


def man_rows(section: str) -> list[Row]:
    """(NAME line, section) of every page in `section`, one per description."""
    if shutil.which("apropos") is None:
        raise IndexUnavailable("apropos not found: install man-db")
    done = subprocess.run(
        ["apropos", "-l", "-s", section, "."], capture_output=True, text=True, check=False
    )
    rows: dict[str, Row] = {}
    for line in done.stdout.splitlines():
        found = NAME_LINE.match(line.strip())
        if found and found["section"] == section:
            key = normalize_text(found["what"])
            rows.setdefault(key, (f"{found['name']} - {found['what']}", section))
    return [rows[key] for key in sorted(rows)]


def unique_rows(rows: Sequence[Row]) -> list[Row]:
    """Rows whose normalised text is under one label only, one per text."""
    labels: dict[str, set[str]] = {}
    for text, label in rows:
        labels.setdefault(normalize_text(text), set()).add(label)
    kept, seen = [], set()
    for text, label in rows:
        key = normalize_text(text)
        if len(labels[key]) == 1 and key not in seen:
            seen.add(key)
            kept.append((text, label))
    return kept


def manpages(cap: int, rng: np.random.Generator) -> tuple[list[Row], list[Row]]:
    """(known rows, unseen rows) of the manual pages installed here."""
    by_section = {s: man_rows(s) for s in (*MAN_KNOWN, *MAN_UNSEEN)}
    if sum(map(len, by_section.values())) == 0:
        raise IndexUnavailable("apropos found no manual pages: run `mandb` first")
    if len(by_section["1"]) > cap:
        keep = sorted(rng.choice(len(by_section["1"]), size=cap, replace=False))
        by_section["1"] = [by_section["1"][i] for i in keep]
    rows = unique_rows([row for section in by_section.values() for row in section])
    # Section names in descriptions ("(8)") give the label away: strip them.
    rows = [(re.sub(r"\s*\(\d\w*\)", "", text), label) for text, label in rows]
    return [r for r in rows if r[1] in MAN_KNOWN], [r for r in rows if r[1] in MAN_UNSEEN]


def works_with_tags(index: str) -> dict[str, str]:
    """Package name -> its one `works-with::` facet (packages with exactly one)."""
    facets: dict[str, str] = {}
    for fields in stanzas(index):
        tags = [tag.strip() for tag in fields.get("Tag", "").replace("\n", " ").split(",")]
        found = [tag.removeprefix("works-with::") for tag in tags if tag.startswith("works-with::")]
        if len(found) == 1 and "Package" in fields:
            facets.setdefault(fields["Package"], found[0])
    return facets


def works_with(
    packages_files: Sequence[Path], translations: Sequence[Path], rng: np.random.Generator
) -> tuple[list[Row], list[Row]]:
    """(known rows, unseen rows) of package descriptions labelled by works-with facet."""
    index = "\n\n".join(map(read_index_file, packages_files)) if packages_files else dumpavail()
    facets = works_with_tags(index)
    packages = [p for p in load_packages(packages_files, translations) if p.name in facets]
    chosen = unique_texts(one_per_source(packages, rng))
    rows = [(p.text, facets[p.name]) for p in chosen]
    # unique_texts checks sections; labels here are facets: check again.
    rows = unique_rows(rows)
    counts = Counter(label for _, label in rows)
    unseen = {
        label
        for label, n in counts.items()
        if n >= MIN_UNSEEN_PACKAGES
        and label not in WORKS_WITH_KNOWN
        and label not in WORKS_WITH_LEFT_OUT
    }
    known = [r for r in rows if r[1] in WORKS_WITH_KNOWN]
    return known, [r for r in rows if r[1] in unseen]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", choices=("manpages", "works-with"))
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSV files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-rows", type=int, default=None, help="default: 60%% of known")
    parser.add_argument("--cap", type=int, default=1500, help="manpages: most section-1 rows")
    parser.add_argument("--packages", type=Path, action="append", default=[])
    parser.add_argument("--translations", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    try:
        if args.corpus == "manpages":
            known, unseen = manpages(args.cap, rng)
        else:
            known, unseen = works_with(args.packages, args.translations, rng)
    except IndexUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    train, holdout = split_known(known, args.train_rows or int(len(known) * 0.6), rng)
    scenarios = {"train": train, "holdout": holdout, "unseen_topic": unseen}
    write_scenarios(args.out, scenarios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
