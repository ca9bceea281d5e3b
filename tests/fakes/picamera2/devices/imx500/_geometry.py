"""libcamera's Point, Size and Rectangle (geometry.cpp) with the operations picamera2's IMX500 helper uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: int
    y: int

    def __neg__(self) -> Point:
        return Point(-self.x, -self.y)


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    def to_tuple(self) -> tuple[int, int]:
        return (self.width, self.height)

    def bounded_to_aspect_ratio(self, ratio: Size) -> Size:
        ratio1, ratio2 = self.width * ratio.height, ratio.width * self.height
        if ratio1 > ratio2:
            return Size(ratio2 // ratio.height, self.height)
        if ratio1 < ratio2:
            return Size(self.width, ratio1 // ratio.width)
        return self

    def centered_to(self, center: Point) -> Rectangle:
        return Rectangle(center.x - self.width // 2, center.y - self.height // 2, self.width, self.height)


@dataclass(frozen=True)
class Rectangle:
    x: int
    y: int
    width: int
    height: int

    @property
    def size(self) -> Size:
        return Size(self.width, self.height)

    @property
    def topLeft(self) -> Point:  # noqa: N802 (libcamera's name)
        return Point(self.x, self.y)

    @property
    def center(self) -> Point:
        return Point(self.x + self.width // 2, self.y + self.height // 2)

    def to_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)

    def scaled_by(self, numerator: Size, denominator: Size) -> Rectangle:
        return Rectangle(self.x * numerator.width // denominator.width,
                         self.y * numerator.height // denominator.height,
                         self.width * numerator.width // denominator.width,
                         self.height * numerator.height // denominator.height)

    def translated_by(self, point: Point) -> Rectangle:
        return Rectangle(self.x + point.x, self.y + point.y, self.width, self.height)

    def bounded_to(self, bound: Rectangle) -> Rectangle:
        x, y = max(self.x, bound.x), max(self.y, bound.y)
        right = min(self.x + self.width, bound.x + bound.width)
        bottom = min(self.y + self.height, bound.y + bound.height)
        return Rectangle(x, y, max(right - x, 0), max(bottom - y, 0))

    def enclosed_in(self, boundary: Rectangle) -> Rectangle:
        width, height = min(self.width, boundary.width), min(self.height, boundary.height)
        x = min(max(self.x, boundary.x), boundary.x + boundary.width - width)
        y = min(max(self.y, boundary.y), boundary.y + boundary.height - height)
        return Rectangle(x, y, width, height)
