"""A strict HTML reader for the report tests: every non-void tag closed in order, ids unique,
the text under each id."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = {"meta", "input", "br", "hr", "img", "link", "col", "wbr", "source"}


class Doc(HTMLParser):
    """Parses the report strictly: every non-void tag closed in order; collects ids, text per id."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.text: dict[str, list[str]] = {}
        self.raw_text: dict[str, list[str]] = {}
        self.feed(html)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {[t for t, _ in self.stack]}")

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            self.attrs.append((tag, name, value or ""))
        el_id = dict(attrs).get("id")
        if el_id:
            if el_id in self.ids:
                self.errors.append(f"duplicate id {el_id}")
            self.ids.append(el_id)
        if tag not in VOID:
            self.stack.append((tag, el_id))

    def handle_startendtag(self, tag, attrs):
        for name, value in attrs:
            self.attrs.append((tag, name, value or ""))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-1:]})")
            return
        self.stack.pop()

    def handle_data(self, data):
        for _tag, el_id in self.stack:
            if el_id:
                self.text.setdefault(el_id, []).append(data)
        self.raw_text.setdefault(self.stack[-1][0] if self.stack else "", []).append(data)

    def text_of(self, el_id: str) -> str:
        return " ".join(" ".join(self.text.get(el_id, [])).split())
