"""Plain-text tables for the CLI, the demo and the reports, drawn by rich."""

import io
from collections.abc import Iterable, Sequence
from typing import Literal

from rich import box
from rich.console import Console
from rich.table import Table

Justify = Literal["left", "right"]


def render_table(
    columns: Sequence[tuple[str, Justify]], rows: Iterable[Sequence[str]], indent: int = 0, rule: bool = False
) -> str:
    """The rows under a header line (and a rule when `rule`), one line each, each column padded to its widest cell; no
    colours, no trailing spaces, lines indented by `indent` spaces."""
    table = Table(box=box.SIMPLE_HEAD if rule else None, show_edge=False, pad_edge=False, collapse_padding=rule)
    for title, justify in columns:
        table.add_column(title, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console = Console(file=io.StringIO(), width=1_000, color_system=None, highlight=False)
    with console.capture() as capture:
        console.print(table)
    return "\n".join(" " * indent + line.rstrip() for line in capture.get().splitlines() if line.strip())
