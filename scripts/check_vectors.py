#!/usr/bin/env python3
"""An independent check of docs/test-vectors.txt, written from docs/protocol.md alone.

It re-implements the frame layer (sync, header CRC-16, trailer CRC-32C, resynchronisation) and
the generic field layer (keys ascending, shortest LEB128 lengths, nested structures), and checks
every vector against them; and SPAKE2 with the pairing key schedule from docs/security.md (a
small Edwards25519, hashlib, hmac) against the pairing messages the Rust tests pin. A second
implementation of the protocol can start from here.
Run: python3 scripts/check_vectors.py
"""
import hashlib
import hmac
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



# Pairing messages 1 and the first 65 bytes of 2 (message B and confirm_T), as pinned in
# crates/posbridge-crypto/src/pairing.rs (whole_exchange_known_answer).
PAIRING_M1 = "0101412d0616639bc902b99ae60b4c4260243278f7d768db495930fadf694c6c2f3330"
PAIRING_M2_HEAD = (
    "42c3af788c1b23f17fccb2d1260984a2388268bef950eb913399e47433839631"
    "b4bcb743095c282b69ec75fb66ea84b85f34a24bb0b8db880735c734fbd8412876"
)

# Edwards25519, just enough for SPAKE2 (affine coordinates; slow and plain on purpose).
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
I = pow(2, (P - 1) // 4, P)

def inv(x): return pow(x, P - 2, P)

def add(a, b):
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * inv(1 + t) % P, (y1 * y2 + x1 * x2) * inv(1 - t) % P)

def mul(k, pt):
    r = (0, 1)
    while k:
        if k & 1: r = add(r, pt)
        pt = add(pt, pt); k >>= 1
    return r

def neg(pt): return ((-pt[0]) % P, pt[1])

def decompress(b):
    y = int.from_bytes(b, 'little') & ((1 << 255) - 1)
    sign = b[31] >> 7
    x2 = (y * y - 1) * inv(D * y * y + 1) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P: x = x * I % P
    assert (x * x - x2) % P == 0
    if x & 1 != sign: x = P - x
    return (x, y)

def compress(pt):
    x, y = pt
    return (y | ((x & 1) << 255)).to_bytes(32, 'little')


def check_pairing() -> None:
    """SPAKE2 and the pairing key schedule, from docs/security.md alone, against the messages
    the Rust test `pairing::tests::whole_exchange_known_answer` pins (code 123456, its test
    RNGs: SHA-256 of a seed byte and a big-endian counter)."""
    G = decompress(bytes.fromhex('5866666666666666666666666666666666666666666666666666666666666666'))
    M = decompress(bytes.fromhex('15cfd18e385952982b6a8f8c7854963b58e34388c8e6dae891db756481a02312'))
    N = decompress(bytes.fromhex('f04f2e7eb734b2a8f8b472eaf9c3c632576ac64aea650b496a8a20ff00e583c3'))

    def hkdf(salt, ikm, info, n):
        prk = hmac.new(salt, ikm, hashlib.sha256).digest()
        out, t, i = b'', b'', 1
        while len(out) < n:
            t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest(); out += t; i += 1
        return out[:n]

    def test_rng(seed, n):
        out, c = b'', 0
        while len(out) < n:
            out += hashlib.sha256(bytes([seed]) + c.to_bytes(8, 'big')).digest(); c += 1
        return out[:n]

    password = b'code:123456'
    w = int.from_bytes(hkdf(b'', password, b'SPAKE2 pw', 48), 'big') % L
    x = int.from_bytes(test_rng(1, 64), 'little') % L
    y = int.from_bytes(test_rng(2, 64), 'little') % L
    X = add(mul(x, G), mul(w, M)); Y = add(mul(y, G), mul(w, N))
    msg_a = b'A' + compress(X); msg_b = b'B' + compress(Y)
    m1 = bytes([1, 1]) + msg_a
    Z = mul(x, add(Y, neg(mul(w, N))))
    Z2 = mul(y, add(X, neg(mul(w, M))))
    assert Z == Z2
    sha = lambda b: hashlib.sha256(b).digest()
    K = sha(sha(password) + sha(b'posbridge/pairing/client') + sha(b'posbridge/pairing/terminal') + compress(X) + compress(Y) + compress(Z))
    TH = sha(b'posbridge/pairing/v1\0' + bytes([1, 1]) + msg_a + msg_b)
    prk = hmac.new(TH, K, hashlib.sha256).digest()
    kc_t = hmac.new(prk, b'confirm terminal' + b'\x01', hashlib.sha256).digest()
    confirm_t = hmac.new(kc_t, b'confirm' + TH, hashlib.sha256).digest()
    assert m1.hex() == PAIRING_M1, m1.hex()
    assert (msg_b + confirm_t).hex() == PAIRING_M2_HEAD, (msg_b + confirm_t).hex()


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
    check_pairing()
    print("pairing: SPAKE2 and the key schedule match docs/security.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
