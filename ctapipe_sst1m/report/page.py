"""
A static page and a PDF of the same content, written as the report is made.

`ReportWriter` takes headings, paragraphs, notes, tables and matplotlib
figures in order. Each figure is rendered at once (PNG embedded in the page
as base64, and a page of the PDF) and closed, so that memory does not grow
with the number of figures. The HTML needs no JavaScript and no other file;
links (logs, products, the status table) are relative to the page. Both files
are written under hidden names and renamed when complete.
"""

import base64
import contextlib
import html
import io
import os
import textwrap
from pathlib import Path

import matplotlib.image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from ..core.products import partial_path

__all__ = ["Link", "ReportWriter"]

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #888; margin-top: 2em; }
h3 { margin-top: 1.5em; color: #333; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: left;
  vertical-align: top; }
th { background: #eee; }
td.complete { background: #dff0d8; } td.failed { background: #f2bcbc; }
td.skipped, td.waiting, td.missing { background: #fcf3cf; }
.missing, .problem { border-left: 4px solid #d9534f; background: #fbeaea;
  padding: 0.3em 0.8em; margin: 0.4em 0; }
.missing { border-color: #e0a800; background: #fff6d5; }
.ok { border-left: 4px solid #5cb85c; background: #eaf6ea; padding: 0.3em 0.8em; }
figure { margin: 0.8em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
nav a { margin-right: 1em; } .small { font-size: 0.85em; color: #555; }
"""


class Link:
    """A table cell or text with a link: ``Link(text, path_or_fragment)``."""

    def __init__(self, text, target, css=None):
        self.text = str(text)
        self.target = target
        self.css = css


class ReportWriter:
    """
    Collects the report's content; `close` writes the HTML and the PDF.

    Parameters
    ----------
    html_path : Path
        The page; links are made relative to its directory.
    pdf_path : Path or None
        The PDF of the same content (no PDF when None).
    title : str
    dpi : int
        Resolution of the figures in the page.
    """

    def __init__(self, html_path, pdf_path, title, dpi=80):
        self.html_path = Path(html_path)
        self.pdf_path = Path(pdf_path) if pdf_path else None
        self.title = title
        self.dpi = dpi
        self.parts = []
        self.text_lines = []
        self.n_figures = 0
        self.html_path.parent.mkdir(parents=True, exist_ok=True)
        self._pdf = None
        if self.pdf_path is not None:
            self.pdf_path.parent.mkdir(parents=True, exist_ok=True)
            self._pdf = PdfPages(partial_path(self.pdf_path))

    # -- content
    def heading(self, level, text, anchor=None):
        """A heading; ``anchor`` makes it a link target (``#anchor``)."""
        ident = f' id="{html.escape(anchor)}"' if anchor else ""
        self.parts.append(f"<h{level}{ident}>{html.escape(text)}</h{level}>")
        self.text_lines += [
            "",
            text,
            "=" * min(len(text), 90) if level <= 2 else "-" * min(len(text), 90),
        ]

    def paragraph(self, text, css=None):
        """A paragraph of plain text (escaped)."""
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")
        self.text_lines += textwrap.wrap(text, 110) or [""]

    def note(self, text, kind="missing"):
        """A highlighted line: ``missing``, ``problem`` or ``ok``."""
        self.parts.append(f'<div class="{kind}">{html.escape(text)}</div>')
        self.text_lines += textwrap.wrap(f"[{kind}] {text}", 110)

    def items(self, lines, kind="problem"):
        """A list of highlighted lines."""
        for line in lines:
            self.note(line, kind)

    def links(self, entries):
        """A navigation line of links."""
        cells = " ".join(self._cell(link) for link in entries)
        self.parts.append(f"<nav>{cells}</nav>")

    def _href(self, target):
        if isinstance(target, str) and target.startswith("#"):
            return target
        relative = os.path.relpath(
            Path(target).resolve(), self.html_path.parent.resolve()
        )
        return Path(relative).as_posix()

    def _cell(self, value):
        if isinstance(value, Link):
            if value.target is None:
                return html.escape(value.text)
            href = html.escape(self._href(value.target))
            return f'<a href="{href}">{html.escape(value.text)}</a>'
        return html.escape("" if value is None else str(value))

    def table(self, header, rows, css=None, caption=None):
        """
        A table; cells are text or `Link`; ``css`` gives per-row lists of cell
        classes (e.g. a step's state).
        """
        out = ["<table>"]
        if caption:
            out.append(f"<caption>{html.escape(caption)}</caption>")
        out.append(
            "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
        )
        for i, row in enumerate(rows):
            classes = css[i] if css else [None] * len(row)
            cells = []
            for value, cls in zip(row, classes, strict=False):
                attr = f' class="{cls}"' if cls else ""
                cells.append(f"<td{attr}>{self._cell(value)}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self.parts.append("\n".join(out))
        widths = [len(h) for h in header]
        text_rows = [[self._text(v) for v in row] for row in rows]
        for row in text_rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
        widths = [min(w, 40) for w in widths]
        for row in [list(header), *text_rows]:
            self.text_lines.append(
                "  ".join(c[:40].ljust(w) for c, w in zip(row, widths, strict=False))
            )

    @staticmethod
    def _text(value):
        if isinstance(value, Link):
            return value.text
        return "" if value is None else str(value)

    def figure(self, figure, caption, anchor=None):
        """Render a figure into the page and the PDF, then drop it."""
        FigureCanvasAgg(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=self.dpi)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        ident = f' id="{html.escape(anchor)}"' if anchor else ""
        self.parts.append(
            f'<figure{ident}><img alt="{html.escape(caption)}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
        self.n_figures += 1
        if self._pdf is not None:
            self._flush_text()
            self._pdf_image(buffer, figure.get_size_inches(), caption)
        figure.clear()

    def _pdf_image(self, png, size, caption):
        """A PDF page of the page's PNG: the same picture, drawn once."""
        png.seek(0)
        image = matplotlib.image.imread(png, format="png")
        width, height = size
        page = Figure(figsize=(width, height + 0.5))
        FigureCanvasAgg(page)
        ax = page.add_axes((0, 0.5 / (height + 0.5), 1, height / (height + 0.5)))
        ax.imshow(image, interpolation="antialiased")
        ax.set_axis_off()
        page.text(
            0.01, 0.1 / (height + 0.5), "\n".join(textwrap.wrap(caption, 150)), fontsize=7
        )
        self._pdf.savefig(page, dpi=self.dpi)

    # -- output
    def _flush_text(self, lines_per_page=62):
        """The text since the last figure as PDF pages (monospace)."""
        lines, self.text_lines = self.text_lines, []
        while lines and not lines[0].strip():
            lines.pop(0)
        for start in range(0, len(lines), lines_per_page):
            page = Figure(figsize=(11.69, 8.27))
            FigureCanvasAgg(page)
            page.text(
                0.03,
                0.97,
                "\n".join(lines[start : start + lines_per_page]),
                family="monospace",
                fontsize=6.5,
                va="top",
            )
            self._pdf.savefig(page)

    def close(self):
        """Write both files under their final names; return their sizes (bytes)."""
        body = "\n".join(self.parts)
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body>\n{body}\n</body></html>\n"
        )
        partial = partial_path(self.html_path)
        partial.write_text(page, encoding="utf-8")
        sizes = {}
        if self._pdf is not None:
            self._flush_text()
            self._pdf.close()
            os.replace(partial_path(self.pdf_path), self.pdf_path)
            sizes["pdf"] = self.pdf_path.stat().st_size
        os.replace(partial, self.html_path)
        sizes["html"] = self.html_path.stat().st_size
        return sizes

    def abort(self):
        """Remove the partial files (the report failed or was interrupted)."""
        if self._pdf is not None:
            # the partial PDF is removed whatever state it is in
            with contextlib.suppress(Exception):
                self._pdf.close()
            partial_path(self.pdf_path).unlink(missing_ok=True)
        partial_path(self.html_path).unlink(missing_ok=True)
