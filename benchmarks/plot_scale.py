"""The figure and the table of `make bench-scale`: wall time per phase against the number of
principals, log-log, from the figures benchmarks/test_scale.py wrote.

    python benchmarks/plot_scale.py <figures.json>... <image.svg>

writes the image (several figure files: runs of different sizes, drawn together) and prints the figures as the Markdown table docs/architecture.md quotes. A line
of slope 1 on the plot is a phase whose time grows with the registry; steeper is worse than linear.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PHASES = ("onboarding", "quiet night", "rotation night", "status", "health")


def load(path: Path) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return figures


def series(figures: list[dict[str, Any]], phase: str) -> tuple[list[int], list[float]]:
    """The (principals, seconds) points of one phase, by registry size."""
    points = sorted((f["principals"], f["seconds"]) for f in figures if f["phase"] == phase)
    return [n for n, _ in points], [s for _, s in points]


def markdown(figures: list[dict[str, Any]]) -> str:
    """One row per registry size, one column per phase: wall time and AWS calls."""
    cells = {(f["principals"], f["phase"]): f"{f['seconds']:.1f} s, {f['calls']:,} calls" for f in figures}
    sizes = sorted({f["principals"] for f in figures})
    lines = [
        "| principals | " + " | ".join(PHASES) + " |",
        "|---" * (len(PHASES) + 1) + "|",
    ]
    for size in sizes:
        lines.append(f"| {size:,} | " + " | ".join(cells.get((size, p), "-") for p in PHASES) + " |")
    return "\n".join(lines)


def plot(figures: list[dict[str, Any]], image: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # The same figures make the same file: no date in it, fixed ids.
    plt.rcParams["svg.hashsalt"] = "tokenwarden-bench-scale"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for phase in PHASES:
        sizes, seconds = series(figures, phase)
        if sizes:
            ax.plot(sizes, [max(s, 0.01) for s in seconds], marker="o", label=phase)
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = sorted({f["principals"] for f in figures})
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("principals in the registry")
    ax.set_ylabel("wall time (s), embedded stack")
    ax.set_title("make bench-scale: wall time per phase")
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    image.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(image, metadata={"Date": None, "Creator": None})
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    figures = [figure for path in argv[:-1] for figure in load(Path(path))]
    plot(figures, Path(argv[-1]))
    print(markdown(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
