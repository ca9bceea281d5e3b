"""The /metrics text, parsed by the official Prometheus client's parser (prometheus_client.parser)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.service.metrics import ServiceMetrics, disk_log_families, mqtt_families
from edge.service.prom_text import Family, Histogram, counter, gauge, render
from edge.service.thermal import Heat

ODD = 'a "quoted"\\back\nslash Äpfel'


def _parse(text: str) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], Any]]:
    """name -> {(sample name, sorted labels): value}, with the family's type and help under __type__, __help__."""
    out: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], Any]] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
        out[family.name][("__type__", ())] = family.type
        out[family.name][("__help__", ())] = family.documentation
    return out


def test_escaping_round_trips_through_the_official_parser() -> None:
    text = render([gauge("odd", f"help with {ODD}", 1.5, {"label": ODD}),
                   counter("things", "n", 3, {"kind": "x"}), gauge("nan", "no value", math.nan),
                   gauge("inf", "big", math.inf)])
    parsed = _parse(text)
    assert parsed["odd"][("odd", (("label", ODD),))] == 1.5
    assert parsed["odd"][("__help__", ())] == f"help with {ODD}"
    assert parsed["things"][("things_total", (("kind", "x"),))] == 3
    assert parsed["things"][("__type__", ())] == "counter"
    assert math.isnan(parsed["nan"][("nan", ())]) and parsed["inf"][("inf", ())] == math.inf


def test_histogram_buckets_are_cumulative() -> None:
    h = Histogram([0.1, 1.0])
    for value in (0.05, 0.1, 0.5, 7.0):
        h.observe(value, {"stage": "x"})
    parsed = _parse(render([h.family("lat", "latency")]))["lat"]
    bucket = {le: parsed[("lat_bucket", (("le", le), ("stage", "x")))] for le in ("0.1", "1", "+Inf")}
    assert bucket == {"0.1": 2, "1": 3, "+Inf": 4}
    assert parsed[("lat_count", (("stage", "x"),))] == 4 and parsed[("lat_sum", (("stage", "x"),))] == 7.65


@pytest.mark.parametrize("bad", [lambda: gauge("1bad", "x"), lambda: gauge("ok", "x", 1, {"le-x": "1"}),
                                 lambda: Family("ok", "summary!", "x"), lambda: render([gauge("a", "x")] * 2)])
def test_malformed_metrics_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"Prometheus|twice"):
        bad()  # type: ignore[operator]


def test_service_metrics_parse_with_every_figure() -> None:
    clock = [100.0]
    metrics = ServiceMetrics(class_names=["Apfel", ODD], info_labels={"sha256": "ab" * 32, "runtime": "tflite_runtime"},
                             clock=lambda: clock[0])
    metrics.count("captured", 5)
    metrics.count("skipped", 2)
    metrics.dropped_total(1)
    metrics.explained({"capture": 2.0, "explain": 40.0}, "Apfel", 0.93)
    metrics.explained({"capture": 3.0, "explain": 60.0}, ODD, 0.55)
    clock[0] = 112.5
    metrics.set_heat(Heat(81.5, 0x20002), 2.0)
    metrics.add_collector(lambda: [*disk_log_families(12, 34567), *mqtt_families(4, 99)])
    p = _parse(metrics.text())
    frames = {dict(k[1])["state"]: v for k, v in p["edge_explainer_frames"].items() if k[0].endswith("_total")}
    assert frames == {"captured": 5, "explained": 2, "skipped": 2, "dropped": 1, "bad": 0}
    assert p["edge_explainer_predictions"][("edge_explainer_predictions_total", (("class", ODD),))] == 1
    stage = p["edge_explainer_stage_seconds"]
    assert stage[("edge_explainer_stage_seconds_count", (("stage", "explain"),))] == 2
    assert stage[("edge_explainer_stage_seconds_sum", (("stage", "explain"),))] == pytest.approx(0.1)
    assert stage[("edge_explainer_stage_seconds_bucket", (("le", "0.05"), ("stage", "explain")))] == 1
    assert p["edge_explainer_confidence"][("edge_explainer_confidence_bucket", (("le", "0.6"),))] == 1
    assert p["edge_explainer_last_confidence"][("edge_explainer_last_confidence", ())] == 0.55
    assert p["edge_explainer_last_explanation_age_seconds"][("edge_explainer_last_explanation_age_seconds", ())] \
        == 12.5
    assert p["edge_explainer_explain_min_gap_seconds"][("edge_explainer_explain_min_gap_seconds", ())] == 2.0
    assert p["edge_explainer_cpu_temperature_celsius"][("edge_explainer_cpu_temperature_celsius", ())] == 81.5
    throttled = {dict(k[1])["condition"]: v for k, v in p["edge_explainer_throttled"].items() if k[1]}
    assert throttled == {"under-voltage": 0, "frequency capped": 1, "throttled": 0, "soft temperature limit": 0}
    model = p["edge_explainer_model_info"]
    assert model[("edge_explainer_model_info", (("runtime", "tflite_runtime"), ("sha256", "ab" * 32)))] == 1
    assert p["edge_explainer_disk_log_bytes"][("edge_explainer_disk_log_bytes", ())] == 34567
    assert p["edge_explainer_mqtt_outbox_dropped"][("edge_explainer_mqtt_outbox_dropped_total", ())] == 4


def test_no_temperature_metrics_on_a_machine_without_them() -> None:
    text = ServiceMetrics(class_names=["a"], info_labels={}).text()
    assert "temperature" not in text and "throttled" not in text
    assert "edge_explainer_frames_total" in text
