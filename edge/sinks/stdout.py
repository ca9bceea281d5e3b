"""JSON lines on stdout: one record per explained frame, for piping into other tools."""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

from edge.records import Result
from edge.sinks.record import make_record

_LOGGER = logging.getLogger(__name__)


class StdoutSink:
    """Prints make_record() for every frame; run it in a SinkWorker so a slow reader never stalls the loop."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.closed_by_reader = False

    def open(self) -> None:
        """Nothing to acquire; stdout is already open."""

    def handle(self, result: Result) -> None:
        if self.closed_by_reader:
            return
        stream = self.stream or sys.stdout
        try:
            stream.write(json.dumps(make_record(result), separators=(",", ":")) + "\n")
            stream.flush()
        except BrokenPipeError:  # `edge run --stdout | head`: the reader is gone; the other outputs go on
            self.closed_by_reader = True
            _LOGGER.info("stdout closed by its reader: no more JSON lines")

    def close(self) -> None:
        if not self.closed_by_reader:
            try:
                (self.stream or sys.stdout).flush()
            except BrokenPipeError:
                self.closed_by_reader = True
