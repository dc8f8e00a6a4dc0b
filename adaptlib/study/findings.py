"""The study's findings as Markdown, built from the verdicts the notebooks computed (never typed in).

``adaptlib findings --figures figures/embedded --out figures/embedded/FINDINGS.md --readme README.md`` writes the
findings file and replaces the README's block between the two ``findings`` markers with the same text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..utils.atomic import atomic_write_text

WORLD_TABLE = "00_embedded_world/tasks_readme.md"
# The figures that carry each notebook's argument, in the order the README shows them.
KEY_FIGURES = {
    "01_main_results": ("few_shot_curves", "base_to_new"),
    "02_transfer_difficulty": ("gain_vs_difficulty", "ensemble_alpha_sweep"),
    "03_variance_and_hybrids": ("dial_winner", "hybrid_comparison"),
    "04_drift": ("drift_per_layer", "regulariser"),
}


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_value(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def _num(v, fmt: str = "{:+.3g}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _part_line(part: dict, not_decided: dict | None = None) -> str:
    """One line per tested sub-claim: estimate, 95% CI, Holm-adjusted p and the outcome; a summary record (main
    results, no paper claim) lists its numbers."""
    if "outcome" not in part:  # a summary record (main results): its numbers
        return "\n".join(f"- {k.replace('_', ' ')}: {_value(v)}" for k, v in part.items())
    lo, hi = part.get("ci95") or [None, None]
    ci = "[n/a]" if lo is None or hi is None else f"[{_num(lo)}, {_num(hi)}]"
    p_adj = part.get("p_adjusted")
    p = "p_adj n/a" if p_adj is None else f"p_adj {p_adj:.2g}"
    size = f"{part.get('n_tasks', 0)} tasks x {part.get('n_seeds', 0)} seeds"
    why = (not_decided or {}).get(part["claim"])
    return (f"- *{part['claim']}*: **{part['outcome']}**: estimate {_num(part.get('estimate'))}, 95% CI {ci}, "
            f"{p} ({size})" + (f"; not decided: {why}" if why else ""))


def _overall(record: dict) -> str:
    counts = [f"{record.get(k, 0)} {k}" for k in ("supported", "contradicted", "inconclusive")]
    return f"Overall: **{record['verdict']}** ({', '.join(counts)} of {record.get('claims', len(record['parts']))} " \
           f"sub-claims)."


def render(figures_dir: str | Path, relative_to: str | Path | None = None) -> str:
    """Markdown of every notebook's verdict with its key figures; image links relative to ``relative_to``."""
    figures_dir = Path(figures_dir)
    base = Path(relative_to) if relative_to is not None else figures_dir
    blocks = []
    for folder in sorted(p for p in figures_dir.iterdir() if (p / "verdict.json").is_file()):
        record = _load(folder / "verdict.json")
        word = record["verdict"]
        title = record["question"][0].upper() + record["question"][1:]
        lines = [f"#### {title}: {'**' + word + '**' if word != 'summary' else 'headline numbers'}", ""]
        if word != "summary":
            lines += [f"Claim: {record['claim']}.", ""]
        lines += [_part_line(p, record.get("not_decided")) for p in record["parts"]]
        if word != "summary":
            lines += ["", _overall(record)]

        figures = [folder / f"{name}.png" for name in KEY_FIGURES.get(folder.name, ())]
        links = [f"![{f.stem}]({os.path.relpath(f, base)})" for f in figures if f.is_file()]
        if links:
            lines += ["", " ".join(links)]
        blocks.append("\n".join(lines))
    if not blocks:
        raise FileNotFoundError(f"no verdicts under {figures_dir}: run the notebooks first (make notebooks)")
    profile = _load(next(figures_dir.glob("*/verdict.json")))["profile"]
    head = f"Computed by `make all` on the **{profile}** profile from `{figures_dir}/*/verdict.json`."
    return head + "\n\n" + "\n\n".join(blocks) + "\n"


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def update_readme(readme: str | Path, text: str, block: str = "findings") -> bool:
    """Replace the README's ``block`` (between ``<!-- block:start -->`` and ``<!-- block:end -->``) with ``text``;
    True if the README changed."""
    readme = Path(readme)
    content = readme.read_text()
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    if start not in content or end not in content:
        raise ValueError(f"{readme} has no {block} block: add the lines {start} and {end} where it should go")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{text}{end}{tail}"
    if new == content:
        return False
    atomic_write_text(readme, new)
    return True


def main_findings(figures: str, out: str, readme: str | None) -> int:
    out_path = Path(out)
    atomic_write_text(out_path, render(figures, out_path.parent))
    print(f"findings -> {out_path}")
    if readme:
        changed = update_readme(readme, render(figures, Path(readme).parent))
        print(f"README findings section {'updated' if changed else 'unchanged'}: {readme}")
        world = Path(figures) / WORLD_TABLE
        if world.is_file():  # notebook 00's table of the tasks, as the README's embedded-world section shows it
            changed = update_readme(readme, world.read_text().rstrip("\n") + "\n", block="world")
            print(f"README world table {'updated' if changed else 'unchanged'}: {readme}")
    return 0
