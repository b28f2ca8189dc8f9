"""``.. paste-options::``: the table of the PasteDeploy filter's options, from the code.

Each row comes from :data:`reloadmw.paste.OPTIONS`, the table the filter
itself converts with, so the docs list exactly the options the filter takes
and what to write for each. What an option does is documented once, on
:class:`reloadmw.ReloadMiddleware`.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from reloadmw.paste import OPTIONS


class PasteOptions(SphinxDirective):
    def run(self) -> list[nodes.Node]:
        table = nodes.table()
        group = nodes.tgroup(cols=2)
        table += group
        group += nodes.colspec(colwidth=1)
        group += nodes.colspec(colwidth=3)
        head = nodes.thead()
        group += head
        head += self.row("option", "what to write")
        body = nodes.tbody()
        group += body
        for name, (_, expected) in OPTIONS.items():
            body += self.row(name, expected, literal=True)
        return [table]

    @staticmethod
    def row(name: str, expected: str, literal: bool = False) -> nodes.row:
        row = nodes.row()
        first = nodes.literal(text=name) if literal else nodes.Text(name)
        row += nodes.entry("", nodes.paragraph("", "", first))
        row += nodes.entry("", nodes.paragraph(text=expected))
        return row


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("paste-options", PasteOptions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
