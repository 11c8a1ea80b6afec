"""Minutes (纪要): plain text rendered as paragraphs and lists, never raw HTML. Apart from the
meeting services so that the meeting model can show its own minutes (models import no services)."""
from __future__ import annotations

import re

from markupsafe import Markup, escape

_ORDERED = re.compile(r"^(\d{1,3}[.．](?!\d)|\d{1,3}[、)）]|[(（]\d{1,3}[)）]"
                      r"|[一二三四五六七八九十]{1,3}[、.．]|[(（][一二三四五六七八九十]{1,3}[)）])\s*")
_BULLET = re.compile(r"^[-*•·●▪◆]\s*")
_SPACE = " \t\u3000"


def _list_item(line: str):
    if m := _ORDERED.match(line):
        return "ol", m.group(1), line[m.end():]
    if m := _BULLET.match(line):
        return "ul", "", line[m.end():]
    return None


def render_minutes(text: str | None) -> Markup:
    """A pasted 纪要 as HTML: blank lines separate paragraphs; lines starting "1." "（一）"
    "一、" become numbered items (keeping their own numbering), lines starting "-" or "•"
    bullet items; an indented line continues the item above. Everything is escaped."""
    if not text or not text.strip():
        return Markup("")
    html = []
    for block in re.split(r"\n[ \t\u3000]*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [line for line in block.split("\n") if line.strip(_SPACE)]
        kind, items, para = None, [], []

        def close_list():
            nonlocal kind, items
            if items:
                body = "".join(f"<li>{item}</li>" for item in items)
                cls = "gj-minutes-ol" if kind == "ol" else "gj-minutes-ul"
                html.append(f'<{kind} class="{cls}">{body}</{kind}>')
            kind, items = None, []

        def close_para():
            nonlocal para
            if para:
                html.append("<p>" + "<br>".join(para) + "</p>")
            para = []

        for line in lines:
            stripped = line.strip(_SPACE)
            item = _list_item(stripped)
            if item is not None:
                close_para()
                if kind != item[0]:
                    close_list()
                kind = item[0]
                marker = f'<span class="gj-marker">{escape(item[1])}</span>' if item[1] else ""
                items.append(marker + str(escape(item[2])))
            elif items and line[:1] in _SPACE:
                items[-1] += "<br>" + str(escape(stripped))  # a continuation of the item
            else:
                close_list()
                para.append(str(escape(stripped)))
        close_list()
        close_para()
    return Markup('<div class="gj-minutes">' + "".join(html) + "</div>")
