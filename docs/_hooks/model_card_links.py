"""MkDocs hook: the model card of the shipped model, included in the site with its links pointed at the site's pages.

`models/cinc2017/MODEL_CARD.md` lives (and ships) beside the weights it describes, and links into `docs/` from
there (`../../docs/studies/depth.md`). The site's `model-card.md` is one line naming it; this hook puts the card in
its place with those links made relative to that page (`studies/depth.md`), so the card has one source and its links
work both in the repository and in the site. (pymdownx.snippets would include it too, but only after this hook's
turn, too late to rewrite links before MkDocs checks them.)
"""

from pathlib import Path

CARD_PAGE = "model-card.md"
CARD = Path("models/cinc2017/MODEL_CARD.md")
PLACEHOLDER = f'--8<-- "{CARD.as_posix()}"'


def on_page_markdown(markdown, page, config, files):
    """Replaces the placeholder line of the model-card page by the card; every other page is unchanged."""
    if page.file.src_uri != CARD_PAGE:
        return markdown
    card = (Path(config["config_file_path"]).parent / CARD).read_text(encoding="utf-8")
    return markdown.replace(PLACEHOLDER, card.replace("](../../docs/", "]("))
