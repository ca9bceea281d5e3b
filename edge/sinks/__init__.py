"""Outputs of the loop: preview window, picamera2 overlay, disk log, MQTT, stdout (the browser view's: edge.http)."""

from edge.records import Result, SinkError
from edge.sinks.base import Sink, SinkWorker
from edge.sinks.disklog import DiskLogConfig, DiskLogSink, read_jsonl
from edge.sinks.hold import ScoreHold
from edge.sinks.picamera2_overlay import Picamera2OverlaySink
from edge.sinks.preview import OpenCVPreviewSink, PreviewConfig
from edge.sinks.record import LogPolicy, PolicyConfig, make_record
from edge.sinks.stdout import StdoutSink

__all__ = [
    "DiskLogConfig", "DiskLogSink", "LogPolicy", "OpenCVPreviewSink",
    "Picamera2OverlaySink", "PolicyConfig", "PreviewConfig", "Result", "ScoreHold", "Sink", "SinkError", "SinkWorker",
    "StdoutSink", "make_record", "read_jsonl",
]
