"""JSON lines on stdout: one record per explained frame, for piping into other tools."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from edge.sinks.base import Result
from edge.sinks.record import make_record


class StdoutSink:
    """Prints make_record() for every frame; run it in a SinkWorker so a slow reader never stalls the loop."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def open(self) -> None:
        """Nothing to acquire; stdout is already open."""

    def handle(self, result: Result) -> None:
        stream = self.stream or sys.stdout
        stream.write(json.dumps(make_record(result), separators=(",", ":")) + "\n")
        stream.flush()

    def close(self) -> None:
        (self.stream or sys.stdout).flush()
