"""A structural check of features.tflite before any interpreter sees it.

tflite-runtime 2.14 (the Bookworm runtime) does not verify the flatbuffer it maps: a truncated or bit-flipped file
whose checksum was updated crashes the process natively. This walks the parts of the TFLite schema an interpreter
dereferences while building its graph (model, subgraphs, tensors, operators, buffers, operator codes, signatures)
and checks that every offset, table and vector lies inside the file and every index points at something that exists.
It reads only the file's structure (a memory map), never its weights.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

MAX_TENSOR_DIMS = 8  # no TFLite kernel takes more
MAX_DIM = 1 << 24  # a larger dimension is a corrupt shape, not a model


class FlatbufferError(Exception):
    """The file is not a well-formed TFLite flatbuffer; the message says where."""


class _Buffer:
    """Bounds-checked little-endian reads of one flatbuffer."""

    def __init__(self, data: mmap.mmap | bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self, fmt: str, at: int, what: str) -> int:
        width = struct.calcsize(fmt)
        if at < 0 or at + width > self.size:
            raise FlatbufferError(f"{what} at byte {at} lies outside the file ({self.size} bytes)")
        return int(struct.unpack_from("<" + fmt, self.data, at)[0])

    def table(self, at: int, what: str) -> Table:
        vtable = at - self.read("i", at, what)
        vsize = self.read("H", vtable, f"{what}'s vtable")
        tsize = self.read("H", vtable + 2, f"{what}'s vtable")
        if vsize < 4 or vsize % 2 or vtable + vsize > self.size or tsize < 4 or at + tsize > self.size:
            raise FlatbufferError(f"{what} at byte {at} has a vtable or table outside the file")
        return Table(self, at, vtable, vsize, tsize, what)


class Table:
    """One table: its fields by index, each read only if present and inside the table."""

    def __init__(self, buf: _Buffer, at: int, vtable: int, vsize: int, tsize: int, what: str) -> None:
        self.buf, self.at, self.vtable, self.vsize, self.tsize, self.what = buf, at, vtable, vsize, tsize, what

    def _field(self, index: int, width: int) -> int:
        """The field's position, or 0 if absent."""
        slot = 4 + 2 * index
        if slot + 2 > self.vsize:
            return 0
        offset = self.buf.read("H", self.vtable + slot, self.what)
        if offset and offset + width > self.tsize:
            raise FlatbufferError(f"{self.what}: field {index} lies outside its table")
        return self.at + offset if offset else 0

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index, struct.calcsize(fmt))
        return self.buf.read(fmt, at, self.what) if at else default

    def _target(self, index: int) -> int:
        at = self._field(index, 4)
        return at + self.buf.read("I", at, self.what) if at else 0

    def child(self, index: int, what: str) -> Table | None:
        at = self._target(index)
        return self.buf.table(at, what) if at else None

    def vector(self, index: int, width: int, what: str) -> tuple[int, int]:
        """(position of the first element, length); (0, 0) if absent."""
        at = self._target(index)
        if not at:
            return 0, 0
        length = self.buf.read("I", at, what)
        if at + 4 + length * width > self.buf.size:
            raise FlatbufferError(f"{what} ({length} elements) runs past the end of the file")
        return at + 4, length

    def ints(self, index: int, fmt: str, what: str) -> list[int]:
        start, length = self.vector(index, struct.calcsize(fmt), what)
        return [self.buf.read(fmt, start + i * struct.calcsize(fmt), what) for i in range(length)]

    def tables(self, index: int, what: str) -> list[Table]:
        start, length = self.vector(index, 4, what)
        out = []
        for i in range(length):
            at = start + 4 * i
            out.append(self.buf.table(at + self.buf.read("I", at, what), f"{what}[{i}]"))
        return out

    def string(self, index: int, what: str) -> None:
        start, length = self.vector(index, 1, what)
        if start and self.buf.read("B", start + length, what) != 0:
            raise FlatbufferError(f"{what} is not a terminated string")


def check_tflite(path: Path) -> None:
    """Raise FlatbufferError unless path's structure is a TFLite model every part of which lies inside the file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        size = os.fstat(fd).st_size
        if size < 16:
            raise FlatbufferError(f"{size} bytes is too short for a TFLite model")
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as data:
            buf = _Buffer(data)
            if bytes(data[4:8]) != b"TFL3":
                raise FlatbufferError("no TFL3 identifier: not a TFLite model")
            _check_model(buf, buf.table(buf.read("I", 0, "root offset"), "model"))
    finally:
        os.close(fd)


def _check_model(buf: _Buffer, model: Table) -> None:
    codes = model.tables(1, "operator_codes")
    for code in codes:
        code.string(1, "operator_codes.custom_code")
    buffers = model.tables(4, "buffers")
    for i, buffer in enumerate(buffers):
        buffer.vector(0, 1, f"buffers[{i}].data")
        offset, size = buffer.scalar(1, "Q"), buffer.scalar(2, "Q")
        if offset > 1 and offset + size > buf.size:
            raise FlatbufferError(f"buffers[{i}] lies outside the file")
    subgraphs = model.tables(2, "subgraphs")
    if not subgraphs:
        raise FlatbufferError("the model has no subgraph")
    sizes = [_check_subgraph(g, i, len(codes), len(buffers)) for i, g in enumerate(subgraphs)]
    model.string(3, "description")
    for i in model.ints(5, "i", "metadata_buffer"):
        _index(i, len(buffers), "metadata_buffer")
    for meta in model.tables(6, "metadata"):
        meta.string(0, "metadata.name")
        _index(meta.scalar(1, "I"), len(buffers), "metadata.buffer")
    for signature in model.tables(7, "signature_defs"):
        graph = _index(signature.scalar(4, "I"), len(subgraphs), "signature_defs.subgraph_index")
        signature.string(2, "signature_defs.signature_key")
        for key in (0, 1):
            for entry in signature.tables(key, "signature_defs tensor map"):
                entry.string(0, "signature_defs tensor name")
                _index(entry.scalar(1, "I"), sizes[graph], "signature_defs tensor_index")


def _check_subgraph(graph: Table, g: int, codes: int, buffers: int) -> int:
    tensors = graph.tables(0, f"subgraphs[{g}].tensors")
    for t, tensor in enumerate(tensors):
        what = f"subgraphs[{g}].tensors[{t}]"
        shape = tensor.ints(0, "i", f"{what}.shape")
        if len(shape) > MAX_TENSOR_DIMS or any(not -1 <= d <= MAX_DIM for d in shape):
            raise FlatbufferError(f"{what} has an impossible shape {shape[:MAX_TENSOR_DIMS + 1]}")
        _index(tensor.scalar(2, "I"), buffers, f"{what}.buffer")
        tensor.string(3, f"{what}.name")
        quantization = tensor.child(4, f"{what}.quantization")
        if quantization is not None:
            for field, fmt in ((0, "f"), (1, "f"), (2, "f"), (3, "q")):
                quantization.vector(field, struct.calcsize(fmt), f"{what}.quantization")
        tensor.ints(7, "i", f"{what}.shape_signature")
    for name, field in (("inputs", 1), ("outputs", 2)):
        for i in graph.ints(field, "i", f"subgraphs[{g}].{name}"):
            _index(i, len(tensors), f"subgraphs[{g}].{name}")
    for o, op in enumerate(graph.tables(3, f"subgraphs[{g}].operators")):
        what = f"subgraphs[{g}].operators[{o}]"
        _index(op.scalar(0, "I"), codes, f"{what}.opcode_index")
        for field in (1, 2, 8):
            for i in op.ints(field, "i", what):
                if i != -1:  # an optional input left out
                    _index(i, len(tensors), f"{what} tensor")
        if op.scalar(3, "B"):
            op.child(4, f"{what}.builtin_options")
        op.vector(5, 1, f"{what}.custom_options")
        op.vector(7, 1, f"{what}.mutating_variable_inputs")
    graph.string(4, f"subgraphs[{g}].name")
    return len(tensors)


def _index(value: int, count: int, what: str) -> int:
    if not 0 <= value < count:
        raise FlatbufferError(f"{what} {value} points past the {count} that exist")
    return value
