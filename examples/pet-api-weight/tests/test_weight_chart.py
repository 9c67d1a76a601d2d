"""The SVG chart on its own: valid XML, one polyline vertex per point, axes with units and dates, escaped text."""

import datetime as dt
import xml.etree.ElementTree as ET

import pytest
from pet_api_weight.chart import EMPTY_MESSAGE, LINE_COLOR, nice_step, render_chart, value_range
from pet_api_weight.models import WeightPoint, WeightSeries, WeightTarget, statistics

SVG = "{http://www.w3.org/2000/svg}"


def series(values: list[tuple[str, float]], *, unit: str = "kg", target: float | None = None) -> WeightSeries:
    points = [WeightPoint(i + 1, dt.date.fromisoformat(day), value) for i, (day, value) in enumerate(values)]
    goal = WeightTarget(target, unit, dt.datetime(2024, 1, 1)) if target is not None else None  # type: ignore[arg-type]
    return WeightSeries(7, unit, points, statistics(points), goal)  # type: ignore[arg-type]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_a_series_is_one_polyline_with_a_vertex_per_point_inside_the_plot():
    root = ET.fromstring(render_chart(series([("2024-01-01", 10.0), ("2024-02-01", 11.5), ("2024-03-15", 10.8),
                                              ("2024-03-15", 11.0)]), title="Rex"))
    assert root.tag == f"{SVG}svg" and (root.get("width"), root.get("height")) == ("800", "400")
    [line] = root.iter(f"{SVG}polyline")
    assert line.get("stroke") == LINE_COLOR
    vertices = [tuple(map(float, pair.split(","))) for pair in line.get("points", "").split()]
    assert len(vertices) == 4
    xs, ys = [x for x, _ in vertices], [y for _, y in vertices]
    assert xs == sorted(xs) and xs[2] == xs[3]  # by date; two weighings on one day share an x
    assert all(0 < x < 800 for x in xs) and all(0 < y < 400 for y in ys)
    assert ys[1] == min(ys)  # the heaviest is drawn highest
    assert len(list(root.iter(f"{SVG}circle"))) == 4
    labels = texts(root)
    assert "Rex \u2014 weight (kg)" in labels and "kg" in labels and "date" in labels
    assert "2024-01-01" in labels and "2024-03-15" in labels
    assert EMPTY_MESSAGE not in labels


def test_no_point_gives_an_empty_chart_with_its_message():
    root = ET.fromstring(render_chart(series([]), title="Rex"))
    assert list(root.iter(f"{SVG}polyline")) == [] and list(root.iter(f"{SVG}circle")) == []
    assert EMPTY_MESSAGE in texts(root)


def test_one_point_and_a_target_are_drawn_and_labelled_in_the_unit():
    root = ET.fromstring(render_chart(series([("2024-05-01", 20.0)], unit="lb", target=18.5), title="Tom"))
    [line] = root.iter(f"{SVG}polyline")
    assert len(line.get("points", "").split()) == 1
    assert "target 18.5 lb" in texts(root) and "Tom \u2014 weight (lb)" in texts(root)


def test_every_text_is_escaped():
    name = '<script>alert("x")</script> & "Rex"'
    svg = render_chart(series([("2024-01-01", 3.0)]), title=name)
    assert "<script" not in svg
    root = ET.fromstring(svg)
    assert f"{name} \u2014 weight (kg)" in texts(root)
    assert root.get("aria-label") == f"{name}: weight (kg)"


@pytest.mark.parametrize("span, step", [(10, 2), (1, 0.2), (0.3, 0.1), (730, 200), (3, 1)])
def test_ticks_are_round_numbers(span, step):
    assert nice_step(span) == pytest.approx(step)


def test_the_value_axis_covers_the_values_with_round_ends():
    assert value_range([10.2, 11.7]) == pytest.approx((10.0, 12.0, 0.5))
    assert value_range([5.0, 5.0]) == (4.0, 6.0, 0.5)
