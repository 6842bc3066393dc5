#!/usr/bin/env python3
"""Draws the Teams app icons committed in approval-svc/assets/teams/ (a padlock):
color.png, 192x192, white on the accent colour; outline.png, 32x32, white on
transparent, as Microsoft's app-package rules ask. Standard library only; rerun it
after changing the drawing: `python3 scripts/teams-icons.py`."""
import os
import struct
import zlib

ACCENT = (0x1F, 0x4E, 0x79, 255)
WHITE = (255, 255, 255, 255)
CLEAR = (0, 0, 0, 0)


def padlock(size, background):
    s = size / 192.0
    cx, top = 96 * s, 86 * s
    outer, inner = 34 * s, 22 * s
    body = (52 * s, 86 * s, 140 * s, 156 * s)
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            px, py = x + 0.5, y + 0.5
            d = ((px - cx) ** 2 + (py - top) ** 2) ** 0.5
            shackle = inner <= d <= outer and py <= top
            legs = (cx - outer <= px <= cx - inner or cx + inner <= px <= cx + outer) and top <= py <= body[1] + 1
            in_body = body[0] <= px <= body[2] and body[1] <= py <= body[3]
            keyhole = ((px - cx) ** 2 + (py - 112 * s) ** 2) ** 0.5 <= 9 * s or (
                abs(px - cx) <= 4 * s and 112 * s <= py <= 136 * s)
            row.append(WHITE if (shackle or legs or in_body) and not keyhole else background)
        rows.append(row)
    return rows


def png(rows):
    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "approval-svc", "assets", "teams")
    with open(os.path.join(out, "color.png"), "wb") as f:
        f.write(png(padlock(192, ACCENT)))
    with open(os.path.join(out, "outline.png"), "wb") as f:
        f.write(png(padlock(32, CLEAR)))
