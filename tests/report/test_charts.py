"""The chart module's geometry: ticks, scaling, empty and single-epoch histories, NaN."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from dlspec.report.charts import (
    BOTTOM,
    LEFT,
    RIGHT,
    TOP,
    Chart,
    Marker,
    Series,
    axes,
    chart_svg,
    heatmap_svg,
    nice_ticks,
    tick_label,
    training_curve_svg,
)

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def points(svg: str) -> list[list[tuple[float, float]]]:
    return [[tuple(map(float, p.split(","))) for p in line.get("points").split()]
            for line in parse(svg).iter(f"{NS}polyline")]


def texts(svg: str, cls: str) -> list[str]:
    return [t.text for t in parse(svg).iter(f"{NS}text") if t.get("class") == cls]


@pytest.mark.parametrize(("lo", "hi", "want"), [
    (0.0, 1.0, [0.0, 0.25, 0.5, 0.75, 1.0]),
    (0.0, 10.0, [0.0, 2.5, 5.0, 7.5, 10.0]),
    (1.0, 12.0, [0.0, 5.0, 10.0, 15.0]),
    (0.31, 0.58, [0.3, 0.4, 0.5, 0.6]),   # a step of 0.0675 rounds up to 0.1
    (-3.0, 7.0, [-5.0, -2.5, 0.0, 2.5, 5.0, 7.5]),
    (310.0, 622.0, [300.0, 400.0, 500.0, 600.0, 700.0]),
])
def test_nice_ticks_are_round_and_cover_the_range(lo, hi, want):
    assert nice_ticks(lo, hi) == want


@pytest.mark.parametrize(("lo", "hi"), [(1e-7, 3e-7), (0.5, 0.5), (0.0, 0.0), (-2.0, -2.0),
                                        (5.0, 1.0), (1e6, 3.7e6), (0.0123, 0.0125)])
def test_nice_ticks_properties(lo, hi):
    t = nice_ticks(lo, hi)
    assert t[0] <= min(lo, hi) and t[-1] >= max(lo, hi)
    steps = {round(b - a, 12) for a, b in zip(t[:-1], t[1:], strict=True)}
    step = next(iter(steps))
    assert max(steps) - min(steps) <= 1e-9 * max(1, abs(step))  # evenly spaced
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5)), (t, mantissa)
    assert 2 <= len(t) <= 8


def test_nice_ticks_of_non_finite_ranges():
    assert nice_ticks(math.nan, 1.0) == [0.0, 1.0]
    assert nice_ticks(0.0, math.inf) == [0.0, 1.0]


def test_tick_labels_have_the_decimals_the_step_needs():
    assert [tick_label(v, [0.0, 0.25]) for v in (0.0, 0.25, 0.5)] == ["0", "0.25", "0.50"]
    assert [tick_label(v, [0.0, 5.0]) for v in (5.0, 10.0)] == ["5", "10"]
    assert tick_label(1000.0, [0.0, 500.0]) == "1,000"
    assert tick_label(2e-5, [0.0, 1e-5]) == "2e-05"


def _chart(ys, xs=None, **kw) -> Chart:
    xs = xs if xs is not None else [float(i + 1) for i in range(len(ys))]
    return Chart("t", [Series("loss", xs, ys)], "epoch", "loss", integer_x=True, **kw)


def test_values_map_inside_the_plot_box_with_min_at_the_bottom():
    c = _chart([0.9, 0.5, 0.3, 0.2])
    (line,) = points(chart_svg(c))
    sx, sy, xt, yt = axes(c)
    assert [p[0] for p in line] == [LEFT, pytest.approx(sx(2.0), abs=0.06),
                                    pytest.approx(sx(3.0), abs=0.06), c.width - RIGHT]
    ys = [p[1] for p in line]
    assert ys == sorted(ys)  # falling loss: pixel y grows downwards
    assert all(TOP <= y <= c.height - BOTTOM for y in ys)
    assert yt[0] <= 0.2 and yt[-1] >= 0.9
    assert xt == [1.0, 2.0, 3.0, 4.0]  # epochs: whole numbers only
    assert texts(chart_svg(c), "xtick") == ["1", "2", "3", "4"]


def test_an_empty_history_draws_a_note_not_a_line():
    for c in (_chart([]), _chart([math.nan, math.nan]), Chart("t", [])):
        svg = chart_svg(c)
        assert not points(svg) and "no values to draw" in svg
        parse(svg)


def test_a_single_epoch_is_one_centred_point():
    c = _chart([0.5])
    svg = chart_svg(c)
    assert not points(svg)
    (dot,) = parse(svg).iter(f"{NS}circle")
    assert float(dot.get("cx")) == pytest.approx((LEFT + c.width - RIGHT) / 2, abs=0.1)
    assert TOP <= float(dot.get("cy")) <= c.height - BOTTOM
    assert "1" in texts(svg, "xtick")


def test_nan_breaks_the_line_and_is_never_drawn():
    c = _chart([0.9, 0.7, math.nan, 0.4, 0.3, math.inf, 0.2])
    svg = chart_svg(c)
    lines = points(svg)
    assert [len(seg) for seg in lines] == [2, 2]   # 0.9-0.7 and 0.4-0.3
    assert len(list(parse(svg).iter(f"{NS}circle"))) == 1   # 0.2 alone, after inf
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    _, sy, _, yt = axes(c)
    assert yt[0] <= 0.2 and yt[-1] < 2  # inf does not stretch the scale


def test_markers_sit_at_their_epoch_and_legend_wraps():
    c = _chart([0.5, 0.4, 0.45, 0.47], markers=[Marker(2.0, "best 2")])
    sx = axes(c)[0]
    (mark,) = [e for e in parse(chart_svg(c)).iter(f"{NS}line") if e.get("class") == "marker"]
    assert float(mark.get("x1")) == pytest.approx(sx(2.0), abs=0.06)
    many = Chart("t", [Series(f"run {k} validation loss", [1.0, 2.0], [1.0, 2.0])
                       for k in range(8)])
    svg = chart_svg(many)
    assert float(parse(svg).get("height")) > many.height  # legend rows below the plot
    assert len(texts(svg, "legend")) == 8


def test_scatter_with_diagonal_is_square_and_points_only():
    c = Chart("p", [Series("", [1.0, 2.0, 3.0], [1.5, 2.0, 2.5])], lines=False, diagonal=True)
    sx, sy, xt, yt = axes(c)
    assert (sx.lo, sx.hi) == (sy.lo, sy.hi) == (xt[0], xt[-1])
    svg = chart_svg(c)
    assert not points(svg) and len(list(parse(svg).iter(f"{NS}circle"))) == 3


def test_heatmap_counts_precision_and_recall():
    svg = heatmap_svg([[50, 10], [5, 35]], ["no", "yes"], "test")
    assert texts(svg, "recall") == ["83.3%", "87.5%"]     # 50/60, 35/40
    assert texts(svg, "precision") == ["90.9%", "77.8%"]  # 50/55, 35/45
    cells = [e for e in parse(svg).iter(f"{NS}rect") if e.get("class") == "cell"]
    assert len(cells) == 4
    assert heatmap_svg([[0, 0], [0, 0]], [0, 1], "empty").count("n/a") == 4


def test_curve_svg_keeps_loss_and_val_loss():
    svg = training_curve_svg([{"epoch": 1, "loss": 0.5, "val_loss": 0.6},
                              {"epoch": 2, "loss": 0.4, "val_loss": 0.55}], "bc")
    assert len(points(svg)) == 2 and texts(svg, "legend") == ["loss", "val_loss"]
    assert re.search(r"bc: loss per epoch", svg)
