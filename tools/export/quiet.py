"""Keep TensorFlow's start-up and converter chatter off the terminal unless --debug.

TensorFlow's C++ side writes straight to file descriptor 2 before absl's logging is initialised (CUDA probes, oneDNN
notices, `W0000 ... tf_tfl_flatbuffer_helpers.cc` lines), and the converter raises UserWarnings: none of it is
anything a user exporting a model can act on, and it buries the tool's own lines. So file descriptor 2 goes to a
temporary file while the command runs (Python's own stderr, logging and progress bars keep the terminal through a
duplicate of it), and afterwards the lines that are not known noise are printed: nothing unexpected is lost.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# C++ log lines (I/W/E + date or 0000) and the notices TensorFlow prints at import.
NOISE = re.compile(
    r"^([IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|WARNING: All log messages before absl::InitializeLog|"
    r"To enable the following instructions|This TensorFlow binary is optimized|.*rebuild TensorFlow with the "
    r"appropriate compiler flags|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] tensorflow/)"
)


@contextmanager
def quiet_unless(debug: bool) -> Iterator[None]:
    """Within the block: C++ stderr captured and filtered, Python warnings from TensorFlow/Keras ignored."""
    if debug:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # litert-torch's ~30 [START]/[ DONE] lines on stdout
    sys.stderr.flush()
    terminal = os.dup(2)
    python_stderr = os.fdopen(os.dup(terminal), "w", buffering=1, encoding="utf-8", errors="replace")
    old_stderr = sys.stderr
    captured = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed in the finally below, after replaying)
    os.dup2(captured.fileno(), 2)
    sys.stderr = python_stderr
    handlers = [h for h in logging.root.handlers if isinstance(h, logging.StreamHandler) and h.stream is old_stderr]
    for handler in handlers:
        handler.setStream(python_stderr)
    try:
        with warnings.catch_warnings():
            for module in ("tensorflow", "keras", "absl", "tf_keras", "h5py"):
                warnings.filterwarnings("ignore", module=module)
            warnings.filterwarnings("ignore", category=UserWarning, message=".*(TFLite|tflite|Interpreter).*")
            yield
    finally:
        python_stderr.flush()
        os.dup2(terminal, 2)
        os.close(terminal)
        sys.stderr = old_stderr
        for handler in handlers:
            handler.setStream(old_stderr)
        python_stderr.close()
        captured.seek(0)
        kept = [line for line in captured.read().decode("utf-8", "replace").splitlines()
                if line.strip() and not NOISE.match(line)]
        captured.close()
        for line in kept:
            print(line, file=sys.stderr)
