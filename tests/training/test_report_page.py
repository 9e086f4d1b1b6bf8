"""training/report_page.py: report.md as one web page, with its plots."""

import base64
import hashlib
import re

from training.report_page import CONTENT_SECURITY_POLICY, render_report_page

MARKDOWN = """# Evaluation of parts version 2

Normal: the images of a folder; 3 normal, 2 anomalous images. Primary score **dssim_knn**, threshold 3.7.

## Missed anomalies: not flagged (1)

| image | kind | score |
| --- | --- | --- |
| `test/defects/a\\|b <script>alert(1)</script>.png` | a\\|b | 3.1 |
"""


def test_the_page_has_the_reports_headings_paragraphs_and_tables_and_its_plots_before_the_first_section():
    page = render_report_page(MARKDOWN, ["histogram.png", "roc.png", "not-a-plot.png"])
    assert "<title>Evaluation of parts version 2</title>" in page and "<h1>Evaluation of parts version 2</h1>" in page
    assert "<p>Normal: the images of a folder; 3 normal, 2 anomalous images. Primary score <strong>dssim_knn" in page
    assert "<h2>Missed anomalies: not flagged (1)</h2>" in page
    assert "<thead><tr><th>image</th><th>kind</th><th>score</th></tr></thead>" in page
    assert "<td>a|b</td><td>3.1</td>" in page  # an escaped | stays in its cell
    figures = [match.start() for match in re.finditer("<figure>", page)]
    assert len(figures) == 2 and figures[-1] < page.index("<h2>")  # an unknown file is not shown
    assert '<img src="histogram.png"' in page and '<img src="roc.png"' in page


def test_a_test_images_name_is_shown_as_text_never_as_markup():
    page = render_report_page(MARKDOWN, [])
    assert "<script" not in page
    assert "<code>test/defects/a|b &lt;script&gt;alert(1)&lt;/script&gt;.png</code>" in page


def test_the_pages_own_style_is_the_only_one_its_policy_allows():
    page = render_report_page(MARKDOWN, [])
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY and "script-src" not in CONTENT_SECURITY_POLICY


def test_a_report_without_sections_still_shows_its_plots():
    page = render_report_page("# Evaluation\n\nNo sections.\n", ["grid.png"])
    assert page.index("<p>No sections.</p>") < page.index('<img src="grid.png"')
