"""Build a real-text topic-classification benchmark from Debian's package index.

    python bench/real_text.py --out DIR [--seed N] [--train-rows N]
        [--packages FILE ...] [--translations FILE ...]

The built-in generator (`refit data generate`) writes clean, templated texts; drift
checks and accuracy estimates tuned on it can look better than they are. Debian's
package descriptions are real text written by thousands of people: short, noisy,
full of names and jargon, with labels (the archive section) that overlap. This
script turns them into labelled CSV files (columns `text`, `label`, `scenario`) for
`refit train` and for drift and accuracy-estimate benchmarks:

* `train.csv`: `--train-rows` rows of the known sections, in their natural mix.
* `holdout.csv`: every other row of the known sections: the same distribution as
  train (and as the held-out rows `refit train` splits off it), so a drift check on
  it must stay quiet.
* `unseen_topic.csv`: every row of sections held back from training entirely,
  labelled with their real section (which the model cannot predict).
* `shifted_mix.csv`: holdout rows re-sampled so that two sections make up most of
  the traffic: label shift, the texts themselves as before.
* `long_texts.csv`: the holdout packages again, with the full long description.

Scenario files other than train are drawn from the same holdout packages, so they
overlap one another, never train.

A row's text is the short description followed by the first sentence of the long
description, as written (the package name appears only where the description
itself names it). The label is the section with any `contrib/`, `non-free/` or
`non-free-firmware/` prefix removed. Only one package per source package and section
is kept (the one named like the source when there is one): sibling binaries
(`foo`, `foo-data`, `foo-doc`, 80 `tesseract-ocr-*` language packs) share nearly the
same text and would otherwise leak between train and holdout. Texts that occur under
two sections are dropped, the rest deduplicated.

Packages come from `apt-cache dumpavail` (or `--packages` files). Debian ships the
long descriptions apart from the Packages files, in `Translation-en` files, which
many container images never download (`Acquire::Languages "none"`): they are read
from the `--translations` files, or from the ones apt has (`apt-get indextargets`).
Compressed index files (`.lz4`, `.gz`, `.xz`, ...) are read through apt's own
`apt-helper cat-file`. The output depends only on the index and `--seed`.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import numpy as np

from refit.training.normalize import normalize_text

T = TypeVar("T")
# Topical, well-populated sections that a reader can tell apart (and a model mostly
# can, with real overlap: net/admin, sound/games, graphics/science). Language
# sections (python, perl, rust, ...) and catch-alls (libs, devel, utils, misc, doc)
# are left out: they say what a package is written in or packaged as, not what it
# is about.
KNOWN_SECTIONS: Final = ("admin", "games", "graphics", "mail", "net", "science", "sound", "text")
# Topics the model never sees; some near a known one (video ~ sound, hamradio ~ net),
# some far from all (fonts, database).
UNSEEN_SECTIONS: Final = ("database", "editors", "electronics", "fonts", "hamradio", "video")
# shifted_mix: these sections make up SHIFTED_SHARE of the rows, the others the rest
# in equal parts (in train they are about a quarter of the rows).
SHIFTED_SECTIONS: Final = ("games", "sound")
SHIFTED_SHARE: Final = 0.7
SECTION_PREFIX: Final = re.compile(r"^(contrib|non-free|non-free-firmware)/")
SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
APT_HELPER: Final = Path("/usr/lib/apt/apt-helper")
COLUMNS: Final = ("text", "label", "scenario")


class IndexUnavailable(RuntimeError):
    """The package index is missing or lacks what the benchmark needs."""


@dataclass(frozen=True)
class Package:
    name: str
    source: str
    section: str  # prefix removed
    short: str  # the short description
    long: tuple[str, ...]  # paragraphs of the long description, lines joined

    @property
    def text(self) -> str:
        """Short description and the first sentence of the long description."""
        first = SENTENCE_END.split(self.long[0], maxsplit=1)[0] if self.long else ""
        return join_sentences([self.short, first])

    @property
    def long_text(self) -> str:
        """Short description and the whole long description."""
        return join_sentences([self.short, *self.long])


def join_sentences(parts: Iterable[str]) -> str:
    """Parts joined by spaces, each ending with punctuation."""
    kept = [part.strip() for part in parts if part.strip()]
    return " ".join(part if part[-1] in ".!?:;" else f"{part}." for part in kept)


# --- reading the index --------------------------------------------------------------


def read_index_file(path: Path) -> str:
    """The text of a Packages or Translation file, decompressed if need be."""
    if path.suffix in {".lz4", ".gz", ".xz", ".bz2", ".zst", ".lzma"}:
        if not APT_HELPER.exists():
            raise IndexUnavailable(f"cannot decompress {path}: {APT_HELPER} not found")
        done = subprocess.run(
            [str(APT_HELPER), "cat-file", str(path)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise IndexUnavailable(f"cannot read {path}: {done.stderr.strip()}")
        return done.stdout
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise IndexUnavailable(f"cannot read {path}: {exc.strerror}") from exc


def dumpavail() -> str:
    """`apt-cache dumpavail`, or a clear error when apt has no package lists."""
    if shutil.which("apt-cache") is None:
        raise IndexUnavailable("apt-cache not found: pass a Packages file with --packages")
    done = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise IndexUnavailable(
            "`apt-cache dumpavail` printed nothing: apt has no package lists here. "
            "Run `apt-get update` (as root) first, or pass a Packages file with --packages."
        )
    return done.stdout


def apt_translation_files() -> list[Path]:
    """The Translation-en files apt has downloaded, if any."""
    if shutil.which("apt-get") is None:
        return []
    done = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(FILENAME)", "Identifier: Translations"],
        capture_output=True,
        text=True,
        check=False,
    )
    paths = [Path(line) for line in done.stdout.split() if "Translation-en" in line]
    return [path for path in paths if path.exists()]


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """Deb822 stanzas as {field: value}; continuation lines kept with their newlines."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def split_description(value: str) -> tuple[str, tuple[str, ...]]:
    """(short description, paragraphs of the long one) of a Description field."""
    lines = value.split("\n")
    paragraphs: list[list[str]] = [[]]
    for line in lines[1:]:
        stripped = line.strip()
        if stripped == ".":
            paragraphs.append([])
        elif stripped:
            paragraphs[-1].append(stripped)
    return lines[0].strip(), tuple(" ".join(p) for p in paragraphs if p)


def long_descriptions(translations: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Long descriptions by Description-md5, from Translation-en texts."""
    found: dict[str, tuple[str, ...]] = {}
    for text in translations:
        for fields in stanzas(text):
            md5 = fields.get("Description-md5")
            if md5 and "Description-en" in fields:
                found[md5] = split_description(fields["Description-en"])[1]
    return found


def parse_packages(text: str, translated: dict[str, tuple[str, ...]]) -> list[Package]:
    """Every package with a section and a long description, sorted by name."""
    packages: dict[str, Package] = {}
    for fields in stanzas(text):
        name, section = fields.get("Package"), fields.get("Section")
        if not name or not section or "Description" not in fields:
            continue
        short, long = split_description(fields["Description"])
        long = long or translated.get(fields.get("Description-md5", ""), ())
        if not long:
            continue
        source = fields.get("Source", name).split()[0]
        section = SECTION_PREFIX.sub("", section)
        packages.setdefault(name, Package(name, source, section, short, long))
    return [packages[name] for name in sorted(packages)]


def load_packages(packages: Sequence[Path], translations: Sequence[Path]) -> list[Package]:
    """Packages with long descriptions from the given files, or from apt's own."""
    index = "\n\n".join(read_index_file(p) for p in packages) if packages else dumpavail()
    translation_files = list(translations) or apt_translation_files()
    found = parse_packages(
        index, long_descriptions([read_index_file(p) for p in translation_files])
    )
    total = sum(1 for fields in stanzas(index) if "Package" in fields)
    if len(found) < total / 2:
        raise IndexUnavailable(
            f"only {len(found)} of {total} packages have a long description: apt keeps them in "
            "Translation-en files, not downloaded here (Acquire::Languages is probably 'none'). "
            "Fetch them without touching the system's lists:\n"
            "  mkdir -p /tmp/apt-lists/partial && apt-get update "
            "-o Dir::State::Lists=/tmp/apt-lists -o Acquire::Languages=en\n"
            "then add --translations /tmp/apt-lists/*Translation-en*"
        )
    return found


# --- choosing rows ------------------------------------------------------------------


def one_per_source(packages: Sequence[Package], rng: np.random.Generator) -> list[Package]:
    """One package per (source, section): the one named like the source, else a random one."""
    groups: dict[tuple[str, str], list[Package]] = {}
    for package in packages:
        groups.setdefault((package.source, package.section), []).append(package)
    chosen = []
    for key in sorted(groups):
        members = groups[key]
        named = [p for p in members if p.name == key[0]]
        chosen.append(named[0] if named else members[int(rng.integers(len(members)))])
    return chosen


def unique_texts(packages: Sequence[Package]) -> list[Package]:
    """Packages whose text is unique: one kept per text, texts under two sections dropped.

    Texts count as the same under training's own normal form, so no near duplicate can
    sit in the training file and in a scenario's at once (the split would have kept
    them together).
    """
    sections: dict[str, set[str]] = {}
    for package in packages:
        sections.setdefault(normalize_text(package.text), set()).add(package.section)
    kept, seen = [], set()
    for package in packages:
        key = normalize_text(package.text)
        if len(sections[key]) == 1 and key not in seen:
            seen.add(key)
            kept.append(package)
    return kept


def split_known(
    known: Sequence[T], train_rows: int, rng: np.random.Generator
) -> tuple[list[T], list[T]]:
    """(train, holdout): a uniform sample of `train_rows` rows, and the rest, each in
    the order of `known`."""
    if train_rows >= len(known):
        raise ValueError(f"--train-rows {train_rows} leaves no holdout of {len(known)} rows")
    order = rng.permutation(len(known))
    train = sorted(order[:train_rows])
    holdout = sorted(order[train_rows:])
    return [known[i] for i in train], [known[i] for i in holdout]


def shifted_mix(holdout: Sequence[Package], rng: np.random.Generator) -> list[Package]:
    """As many holdout rows as the pool allows, SHIFTED_SECTIONS making up SHIFTED_SHARE."""
    by_section: dict[str, list[Package]] = {}
    for package in holdout:
        by_section.setdefault(package.section, []).append(package)
    others = [s for s in sorted(by_section) if s not in SHIFTED_SECTIONS]
    share = {s: SHIFTED_SHARE / len(SHIFTED_SECTIONS) for s in SHIFTED_SECTIONS}
    share.update({s: (1 - SHIFTED_SHARE) / len(others) for s in others})
    size = int(min(len(by_section.get(s, [])) / w for s, w in share.items()))
    chosen: list[Package] = []
    for section, weight in share.items():
        pool = by_section.get(section, [])
        picks = rng.choice(len(pool), size=round(size * weight), replace=False)
        chosen.extend(pool[i] for i in sorted(picks))
    return [chosen[i] for i in rng.permutation(len(chosen))]


def build_scenarios(
    packages: Sequence[Package], *, seed: int, train_rows: int
) -> dict[str, list[tuple[str, str]]]:
    """Each scenario's (text, label) rows."""
    rng = np.random.default_rng(seed)
    wanted = set(KNOWN_SECTIONS) | set(UNSEEN_SECTIONS)
    rows = unique_texts(one_per_source([p for p in packages if p.section in wanted], rng))
    known = [p for p in rows if p.section in KNOWN_SECTIONS]
    train, holdout = split_known(known, train_rows, rng)
    return {
        "train": [(p.text, p.section) for p in train],
        "holdout": [(p.text, p.section) for p in holdout],
        "unseen_topic": [(p.text, p.section) for p in rows if p.section in UNSEEN_SECTIONS],
        "shifted_mix": [(p.text, p.section) for p in shifted_mix(holdout, rng)],
        "long_texts": [(p.long_text, p.section) for p in holdout],
    }


# --- output -------------------------------------------------------------------------


def write_csv(path: Path, scenario: str, rows: Sequence[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows((text, label, scenario) for text, label in rows)


def summary(scenario: str, rows: Sequence[tuple[str, str]]) -> str:
    counts = Counter(label for _, label in rows)
    words = np.mean([len(text.split()) for text, _ in rows]) if rows else 0.0
    classes = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
    return f"{scenario:13} {len(rows):6} rows, {words:5.1f} words on average: {classes}"


def write_scenarios(out: Path, scenarios: dict[str, list[tuple[str, str]]]) -> None:
    """One `<scenario>.csv` per scenario in `out`, with a summary line for each."""
    out.mkdir(parents=True, exist_ok=True)
    for scenario, rows in scenarios.items():
        write_csv(out / f"{scenario}.csv", scenario, rows)
        print(summary(scenario, rows))
    print(f"wrote {len(scenarios)} files to {out}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the CSV files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-rows", type=int, default=3500)
    parser.add_argument(
        "--packages",
        type=Path,
        action="append",
        default=[],
        help="Packages file(s) to read instead of `apt-cache dumpavail`",
    )
    parser.add_argument(
        "--translations",
        type=Path,
        action="append",
        default=[],
        help="Translation-en file(s) with the long descriptions",
    )
    args = parser.parse_args(argv)
    try:
        packages = load_packages(args.packages, args.translations)
    except IndexUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scenarios = build_scenarios(packages, seed=args.seed, train_rows=args.train_rows)
    print(f"{len(packages)} packages with a long description; seed {args.seed}")
    write_scenarios(args.out, scenarios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
