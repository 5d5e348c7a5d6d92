"""The static report: figures, claims and sliders, checked in headless Chromium."""

import json

import pytest
from matplotlib.figure import Figure as MplFigure

from reglab.experiments.base import Claim, Figure, Slider, Table
from reglab.report import Section, save_figure, save_slider, save_table, write_report


def _line_figure(slope):
    fig = MplFigure(figsize=(3, 2))
    fig.subplots().plot([0, 1], [0, slope])
    return fig


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    png = save_figure(Figure("fig_a", _line_figure(1), "a line"), out / "exp")
    slider = save_slider(
        Slider(
            "slide",
            "slope",
            ["1", "2", "3"],
            [_line_figure(s) for s in (1, 2, 3)],
            "three slopes",
        ),  # fmt: skip
        out / "exp" / "sliders",
        out,
    )
    claims = [
        Claim("up", "it rises", 1.0, 0.5, ">", "slope"),
        Claim.over_seeds(
            "flat", "it is flat " * 12, [0.2, 0.9, 0.7], 0.5, "<", "slope " * 20,
            why="the post overstates it",
        ),
    ]  # fmt: skip
    section = Section(
        "exp", {"epochs": 3}, [(str(png.relative_to(out)), "a line")], [slider], claims,
        {"compile_s": 1.25, "run_s": 2.5}, devices="2 CPU devices",
    )  # fmt: skip
    page = write_report(out, [section], title="t", versions={"x": "1"}, total_seconds=1)
    return out, page


def test_report_lists_claims_with_verdicts_and_embeds_their_data(report):
    _, page = report
    text = page.read_text()
    assert text.count('class="pass"') == 1 and text.count('class="fail"') == 1
    assert "1 of 2\nclaims pass" in text
    start = text.index('id="claims-data">') + len('id="claims-data">')
    data = json.loads(
        text[start : text.index("</script>", start)].replace("&quot;", '"')
    )
    assert [c["passed"] for c in data] == [True, False]
    assert data[1]["agreement"] == "holds in 1 of 3 seeds"


def test_a_failing_claim_says_why_with_its_interval_and_agreement(report):
    text = report[1].read_text()
    assert (
        "why it fails: seed-sensitive: holds in 1 of 3 seeds; the post overstates it"
        in text
    )
    assert "95% CI [" in text and "holds in 1 of 3 seeds" in text
    assert "trained on 2 CPU devices; compiling 1.2 s, training 2.5 s" in text
    assert "compile_s" not in text  # timings in words
    assert 'href="exp/fig_a.svg">SVG</a>' in text  # every figure opens full size


def test_a_quick_run_says_its_failures_are_expected(tmp_path):
    claims = [Claim("flat", "it is flat", 1.0, 0.5, "<")]
    section = Section("exp", {}, [], [], claims)
    page = write_report(tmp_path, [section], title="t", versions={}, total_seconds=1,
                        quick=True)  # fmt: skip
    text = page.read_text()
    assert "A quick run:" in text
    assert "why it fails: a quick run (cut epochs): failures here are expected" in text


def test_slider_needs_one_figure_per_value():
    with pytest.raises(ValueError, match="one figure per value, got 2 values and 1"):
        Slider("k", "l", ["a", "b"], [_line_figure(1)], "c")


@pytest.mark.browser
def test_slider_swaps_the_panel_in_chromium(report, browser):
    _, page_path = report
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(page_path.as_uri())
    img = "figure.slider img"
    first = page.get_attribute(img, "src")
    page.fill("figure.slider input", "2")  # fires the input event
    page.wait_for_function(
        "s => { const i = document.querySelector(s); "
        "return i.complete && i.naturalWidth > 0 }",
        arg=img,
    )
    second = page.get_attribute(img, "src")
    label = page.inner_text("figure.slider output")
    overflow = page.evaluate("document.body.scrollWidth > window.innerWidth + 1")
    # the claims table itself fits too: no sideways scrolling inside its wrapper
    wrap_overflow = page.eval_on_selector(
        ".table-wrap", "w => w.scrollWidth > w.clientWidth + 1"
    )
    page.screenshot(path=str(page_path.parent / "phone.png"), full_page=True)
    assert first != second and second.endswith("slide_02.png")
    assert label == "3"
    assert not overflow  # readable on a phone: no sideways scrolling of the page
    assert not wrap_overflow


@pytest.fixture
def table_page(tmp_path):
    table = Table(
        "summary",
        ["regularizer", "accuracy (95% CI)", "ECE"],
        [["none", (0.81, "0.810 [0.80, 0.82]"), 0.12],
         ["mixup", (0.9, "0.900 [0.89, 0.91]"), 0.05],
         ["L2", (0.85, "0.850 [0.84, 0.86]"), 0.2]],
        "each at its best strength",
    )  # fmt: skip
    saved = save_table(table, tmp_path / "exp", tmp_path)
    section = Section("exp", {}, [], [], [], tables=[saved])
    return write_report(tmp_path, [section], title="t", versions={}, total_seconds=1)


def test_a_table_is_saved_as_csv_of_its_values_and_shown_with_its_texts(table_page):
    rows = (table_page.parent / "exp" / "summary.csv").read_text().splitlines()
    assert rows == ["regularizer,accuracy (95% CI),ECE", "none,0.81,0.12",
                    "mixup,0.9,0.05", "L2,0.85,0.2"]  # fmt: skip
    text = table_page.read_text()
    assert 'data-sort="0.9">0.900 [0.89, 0.91]</td>' in text
    assert 'href="exp/summary.csv">CSV</a>' in text


def test_a_table_row_needs_a_cell_per_column():
    with pytest.raises(ValueError, match="a row has 2 cells for 3 columns"):
        Table("t", ["a", "b", "c"], [[1, 2]], "caption")


@pytest.mark.browser
def test_a_table_sorts_by_the_clicked_column_in_chromium(table_page, browser):
    page = browser.new_page()
    page.goto(table_page.as_uri())

    def first_column():
        return page.eval_on_selector_all(
            "table.sortable tbody tr", "rows => rows.map(r => r.cells[0].textContent)"
        )

    assert first_column() == ["none", "mixup", "L2"]  # as the experiment gave them
    page.click("table.sortable th button[data-col='1']")  # by the accuracy's value
    assert first_column() == ["none", "L2", "mixup"]
    page.click("table.sortable th button[data-col='1']")  # again: the other way
    assert first_column() == ["mixup", "L2", "none"]
    page.click("table.sortable th button[data-col='2']")  # ECE, a plain number
    assert first_column() == ["mixup", "none", "L2"]
    page.click("table.sortable th button[data-col='0']")  # words alphabetically
    assert first_column() == ["L2", "mixup", "none"]
    sorted_by = page.eval_on_selector_all(
        "th button[aria-sort]", "bs => bs.map(b => [b.textContent, b.ariaSort])"
    )
    assert sorted_by == [["regularizer", "ascending"]]
