#!/usr/bin/env python3
"""An independent check of docs/test-vectors.txt, written from docs/protocol.md alone.

It re-implements the frame layer (sync, header CRC-16, trailer CRC-32C, resynchronisation) and
the generic field layer (keys ascending, shortest LEB128 lengths, nested structures), and checks
every vector against them; and SPAKE2 with the pairing key schedule from docs/security.md (a
small Edwards25519, hashlib, hmac) against the pairing messages the Rust tests pin; a signed
result; and the secure channel's handshake and sealed frames (X25519, AES-256-GCM and Noise IK
written here from their specifications). A second
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


# The signature of the approved-result vector under the RFC 8032 test key (RFC 8032 §7.1, test 1),
# as pinned in crates/posbridge-crypto/tests/signing.rs (known_answer_for_the_approved_result_vector).
RFC_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RESULT_SIGNATURE = (
    "67d32ddac87ab61903f571c253e1e0d66becd9401ac2c8726666d334a10a1ad7"
    "9fc7ca51c9ff1f86b9983f77f78f391e2845cd625dfd98a9970e778316135f09"
)


# X25519 (RFC 7748), AES-256 (FIPS 197) and GCM (SP 800-38D) from their specifications, small
# and slow, for the secure channel's vector.
def x25519(k: bytes, u: bytes) -> bytes:
    k = bytearray(k); k[0] &= 248; k[31] &= 127; k[31] |= 64
    k = int.from_bytes(k, 'little')
    x1 = int.from_bytes(u, 'little') & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap: x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3, z3 = (da + cb) ** 2 % P, x1 * (da - cb) ** 2 % P
        x2, z2 = aa * bb % P, e * (aa + 121665 * e) % P
    if swap: x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, 'little')

def _sbox():
    box, p, q = [0] * 256, 1, 1
    while True:
        p = p ^ ((p << 1) & 0xff) ^ (0x1b if p & 0x80 else 0)
        q ^= q << 1; q ^= q << 2; q ^= q << 4; q &= 0xff
        if q & 0x80: q ^= 0x09
        r = lambda v, n: ((v << n) | (v >> (8 - n))) & 0xff
        box[p] = q ^ r(q, 1) ^ r(q, 2) ^ r(q, 3) ^ r(q, 4) ^ 0x63
        if p == 1: break
    box[0] = 0x63
    return box
SBOX = _sbox()

def _xt(a): return ((a << 1) ^ 0x1b) & 0xff if a & 0x80 else a << 1

def aes256_encrypt_block(key: bytes, block: bytes) -> bytes:
    w = [list(key[i:i + 4]) for i in range(0, 32, 4)]
    rcon = 1
    for i in range(8, 60):
        t = list(w[i - 1])
        if i % 8 == 0:
            t = [SBOX[b] for b in t[1:] + t[:1]]; t[0] ^= rcon; rcon = _xt(rcon)
        elif i % 8 == 4:
            t = [SBOX[b] for b in t]
        w.append([a ^ b for a, b in zip(w[i - 8], t)])
    s = [b ^ k for b, k in zip(block, sum(w[0:4], []))]
    for rnd in range(1, 15):
        s = [SBOX[b] for b in s]
        s = [s[(i + 4 * (i % 4)) % 16] for i in range(16)]
        if rnd < 14:
            m = []
            for c in range(4):
                a = s[4 * c:4 * c + 4]; t = a[0] ^ a[1] ^ a[2] ^ a[3]
                m += [a[i] ^ t ^ _xt(a[i] ^ a[(i + 1) % 4]) for i in range(4)]
            s = m
        s = [b ^ k for b, k in zip(s, sum(w[4 * rnd:4 * rnd + 4], []))]
    return bytes(s)

def _gmul(x: int, y: int) -> int:
    z, R = 0, 0xe1 << 120
    for i in range(127, -1, -1):
        if (y >> i) & 1: z ^= x
        x = (x >> 1) ^ R if x & 1 else x >> 1
    return z

def aes256gcm_encrypt(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """Ciphertext and the 16-byte tag."""
    h = int.from_bytes(aes256_encrypt_block(key, bytes(16)), 'big')
    ctr = lambda i: nonce + i.to_bytes(4, 'big')
    out = bytearray()
    for i in range(0, len(plaintext), 16):
        ks = aes256_encrypt_block(key, ctr(2 + i // 16))
        out += bytes(a ^ b for a, b in zip(plaintext[i:i + 16], ks))
    def blocks(data):
        data = data + bytes(-len(data) % 16)
        return [int.from_bytes(data[i:i + 16], 'big') for i in range(0, len(data), 16)]
    y = 0
    for b in blocks(aad) + blocks(bytes(out)) + [(len(aad) * 8) << 64 | len(out) * 8]:
        y = _gmul(y ^ b, h)
    tag = (y ^ int.from_bytes(aes256_encrypt_block(key, ctr(1)), 'big')).to_bytes(16, 'big')
    return bytes(out) + tag


def check_channel(vectors) -> None:
    """The [channel] vector from docs/security.md ("Secure channel") and the Noise specification
    (revision 34: the IK pattern, HKDF with HMAC-SHA256, AESGCM's nonce as 4 zero bytes and the
    64-bit counter big-endian), with the primitives above."""
    v = {k: bytes(int(h, 16) for h in t.split()) for k, t in vectors["channel"].items()}
    pub = lambda secret: x25519(secret, (9).to_bytes(32, 'little'))
    assert pub(v["client-static-secret"]) == v["client-static-public"]
    assert pub(v["terminal-static-secret"]) == v["terminal-static-public"]
    sha = lambda d: hashlib.sha256(d).digest()
    hm = lambda k, d: hmac.new(k, d, hashlib.sha256).digest()
    def hkdf2(ck, ikm):
        t = hm(ck, ikm); o1 = hm(t, b'\x01'); return o1, hm(t, o1 + b'\x02')

    class Symmetric:
        def __init__(self):
            name = b"Noise_IK_25519_AESGCM_SHA256"
            self.h = name.ljust(32, b'\0') if len(name) <= 32 else sha(name)
            self.ck, self.k, self.n = self.h, None, 0
        def mix_hash(self, data): self.h = sha(self.h + data)
        def mix_key(self, ikm): self.ck, self.k = hkdf2(self.ck, ikm); self.n = 0
        def encrypt_and_hash(self, p):
            c = aes256gcm_encrypt(self.k, bytes(4) + self.n.to_bytes(8, 'big'), self.h, p)
            self.n += 1; self.mix_hash(c); return c

    s_i, s_r = v["client-static-secret"], v["terminal-static-secret"]
    e_i, e_r = v["client-ephemeral-secret"], v["terminal-ephemeral-secret"]
    st = Symmetric()
    st.mix_hash(b"posbridge/channel/v1")           # the prologue
    st.mix_hash(pub(s_r))                          # IK's pre-message: <- s
    # -> e, es, s, ss, with the client's payload
    m1 = pub(e_i); st.mix_hash(pub(e_i))
    st.mix_key(x25519(e_i, pub(s_r)))
    m1 += st.encrypt_and_hash(pub(s_i))
    st.mix_key(x25519(s_i, pub(s_r)))
    m1 += st.encrypt_and_hash(v["client-payload"])
    assert m1 == v["handshake-1"], "handshake message 1"
    # <- e, ee, se, with the terminal's payload
    m2 = pub(e_r); st.mix_hash(pub(e_r))
    st.mix_key(x25519(e_r, pub(e_i)))
    st.mix_key(x25519(e_r, pub(s_i)))
    m2 += st.encrypt_and_hash(v["terminal-payload"])
    assert m2 == v["handshake-2"], "handshake message 2"
    assert st.h == v["handshake-hash"], "handshake hash"
    to_terminal, to_client = hkdf2(st.ck, b"")
    # A sealed data frame: header (13 bytes, the associated data) | counter (8) | ciphertext | tag
    # | CRC-32C trailer; counter 0, the nonce 4 zero bytes and the counter big-endian.
    for key, name in ((to_terminal, "client-frame"), (to_client, "terminal-frame")):
        frame = v[name]
        decoded = decode_stream(frame)
        assert len(decoded) == 1 and decoded[0][0] == "frame", (name, decoded)
        assert frame[4] & 0x01, "the encrypted flag"
        counter = (0).to_bytes(8, 'big')
        sealed = counter + aes256gcm_encrypt(key, bytes(4) + counter, frame[:13], v["plaintext"])
        assert decoded[0][3] == sealed, name


def result_signing_bytes(message: bytes) -> bytes:
    """The canonical bytes of a TransactionResult (type 0x21) as docs/security.md ("Signed
    results") defines them, from the message's fields as docs/protocol.md lists them."""
    assert message[0] == 0x21
    f = dict(fields(message[1:]))
    uint = lambda key, default=0: int.from_bytes(f[key], "big") if key in f else default
    def opt(key):
        return (b"\x01" + uint(key).to_bytes(8, "big")) if key in f else bytes(9)
    def text(key):
        value = f.get(key, b"")
        return bytes([min(len(value), 255)]) + value[:255]
    return (
        b"posbridge/result/v1\x00"
        + f[0x09] + f[0x05] + f[0x07]             # terminal id, idempotency key, transaction id
        + bytes([uint(0x0b), uint(0x0d)])         # kind, outcome
        + uint(0x0f).to_bytes(2, "big")           # reason
        + uint(0x13).to_bytes(2, "big")           # currency
        + uint(0x11).to_bytes(8, "big")           # amount
        + uint(0x15).to_bytes(8, "big")           # approved amount
        + opt(0x17) + opt(0x19) + opt(0x28)       # tip, cashback, balance
        + uint(0x25).to_bytes(8, "big")           # time
        + bytes([1 if 0x27 in f else 0, uint(0x1a)])  # offline, payment method
        + text(0x1c) + text(0x20) + text(0x22)    # masked PAN, authorisation code, reference
        + emv_signing_bytes(f.get(0x2e))          # protocol 1.1: EMV data, when present
    )


def emv_signing_bytes(data) -> bytes:
    """The EMV part of the canonical bytes (docs/security.md): nothing without EMV data."""
    if data is None:
        return b""
    e = dict(fields(data))
    text = lambda key: bytes([len(e.get(key, b""))]) + e.get(key, b"")
    return (text(0x02) + text(0x04)                 # AID, application label
            + e[0x06] + e[0x08]                     # TVR (5), TSI (2)
            + text(0x0A)                            # ARC
            + e[0x0C] + e[0x0E] + e[0x10])          # CVM, cryptogram type, cryptogram (8)


def ed25519_sign(secret: bytes, message: bytes) -> tuple[bytes, bytes]:
    """RFC 8032 Ed25519: (public key, signature), with the curve above and hashlib's SHA-512."""
    B = decompress(bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666"))
    h = hashlib.sha512(secret).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    A = compress(mul(a, B))
    r = int.from_bytes(hashlib.sha512(h[32:] + message).digest(), "little") % L
    R = compress(mul(r, B))
    k = int.from_bytes(hashlib.sha512(R + A + message).digest(), "little") % L
    S = (r + k * a) % L
    return A, R + S.to_bytes(32, "little")


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    B = decompress(bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666"))
    R, S = signature[:32], int.from_bytes(signature[32:], "little")
    if S >= L:
        return False
    k = int.from_bytes(hashlib.sha512(R + public + message).digest(), "little") % L
    return mul(S, B) == add(decompress(R), mul(k, decompress(public)))


def check_signature(vectors) -> None:
    """The approved-result vector's canonical bytes built from the documents, signed with the
    RFC 8032 test key from scratch: the same signature as posbridge's; and it verifies, and a
    changed amount does not."""
    message = bytes(int(h, 16) for h in vectors["approved-result"]["message"].split())
    signed = result_signing_bytes(message)
    public, signature = ed25519_sign(bytes.fromhex(RFC_SECRET), signed)
    assert public.hex() == RFC_PUBLIC, public.hex()
    assert signature.hex() == RESULT_SIGNATURE, signature.hex()
    assert ed25519_verify(public, signed, signature)
    tampered = bytearray(signed)
    tampered[-60] ^= 1
    assert not ed25519_verify(public, bytes(tampered), signature)
    # Protocol 1.1: the EMV data extends the bytes, and the signature covers it.
    v = vectors["emv-result"]
    message = bytes(int(h, 16) for h in v["message"].split())
    signed_emv = result_signing_bytes(message)
    assert signed_emv.startswith(signed), "the 1.0 bytes come first"
    _, signature = ed25519_sign(bytes.fromhex(RFC_SECRET), signed_emv)
    assert signature == bytes(int(h, 16) for h in v["signature-rfc8032-test1"].split()), signature.hex()
    assert ed25519_verify(public, signed_emv, signature)
    assert not ed25519_verify(public, signed_emv[:-1] + bytes([signed_emv[-1] ^ 1]), signature)


def check_update(vectors) -> None:
    """The update-offer vector: its manifest's canonical bytes from docs/security.md, and the
    publisher's signature in it made with the RFC 8032 test key."""
    message = bytes(int(h, 16) for h in vectors["update-offer"]["message"].split())
    assert message[0] == 0x1D, "UpdateOffer type"
    f = dict(fields(message[1:]))
    version, size, digest, signature = f[0x04], f[0x07], f[0x09], f[0x0B]
    assert len(digest) == 32 and len(signature) == 64
    signed = (b"posbridge/update/v1\x00" + bytes([len(version)]) + version
              + int.from_bytes(size, "big").to_bytes(4, "big") + digest)
    public, mine = ed25519_sign(bytes.fromhex(RFC_SECRET), signed)
    assert mine == signature, mine.hex()
    assert ed25519_verify(public, signed, signature)
    assert not ed25519_verify(public, signed[:-1] + b"\x00", signature)


def check_offline_outcome(vectors) -> None:
    """The offline-outcome vector: its canonical bytes from docs/security.md, and the
    terminal's signature in it made with the RFC 8032 test key."""
    message = bytes(int(h, 16) for h in vectors["offline-outcome"]["message"].split())
    assert message[0] == 0x2C, "OfflineOutcome type"
    f = dict(fields(message[1:]))
    assert 0x03 not in f, "a push carries no request id"
    uint = lambda b: int.from_bytes(b, "big")
    state = uint(f[0x0B])
    reason = uint(f[0x0D]) if state == 3 else 0
    assert (state, reason) == (3, 51), (state, reason)
    signed = (b"posbridge/offline-outcome/v1\x00" + f[0x09] + f[0x05] + f[0x07]
              + bytes([state]) + reason.to_bytes(2, "big") + uint(f[0x0E]).to_bytes(8, "big"))
    public, mine = ed25519_sign(bytes.fromhex(RFC_SECRET), signed)
    assert mine == f[0x10], mine.hex()
    assert ed25519_verify(public, signed, f[0x10])
    confirmed = signed[:-11] + bytes([2]) + bytes(2) + signed[-8:]
    assert not ed25519_verify(public, confirmed, f[0x10]), "a decline is not a confirmation"


def check_telemetry(vectors) -> None:
    """Decodes the pushed TelemetryReport by docs/protocol.md §3.5 and §4.7 alone."""
    v = vectors["telemetry-report"]
    message = bytes(int(h, 16) for h in v["message"].split())
    assert message[0] == 0x28, "TelemetryReport type"

    def uint(b):
        assert b and (len(b) == 1 or b[0] != 0), "minimal big-endian uint"
        return int.from_bytes(b, "big")

    top = dict(fields(message[1:]))
    assert 0x03 not in top, "a push carries no request id"
    change_names = {1: "battery-low", 2: "power", 3: "paper-low", 4: "paper-out",
                    5: "paper-refilled", 6: "acquirer-offline", 7: "acquirer-online",
                    8: "software", 9: "stored-offline"}
    bits = uint(top[0x04])
    changes = [change_names[n] for n in sorted(change_names) if bits >> n & 1]
    t = dict(fields(top[0x07]))
    power = {1: "battery", 2: "mains", 3: "usb", 4: "dock"}
    paper = {1: "ok", 2: "low", 3: "out"}
    acquirer = {1: "online", 2: "offline"}
    got = [
        f"changes {','.join(changes)}",
        f"battery {uint(t[0x02])}",
        f"charging {'yes' if 0x04 in t else 'no'}",
        f"power {power[uint(t[0x06])]}",
        f"firmware {t[0x08].decode()}",
        f"app {t[0x0A].decode()}",
        f"paper {paper[uint(t[0x0C])]}",
        f"acquirer {acquirer[uint(t[0x0F])]}",
        f"stored-offline {uint(t[0x10]) if 0x10 in t else 0}",
    ]
    want = [part.strip() for part in v["expect-fields"].split(";")]
    assert got == want, (got, want)


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
    check_signature(vectors)
    print("signed results (1.0, and 1.1 with EMV data): the canonical bytes and Ed25519 signatures match docs/security.md")
    check_channel(vectors)
    print("secure channel: the Noise IK handshake and both sealed frames match docs/security.md")
    check_update(vectors)
    print("software update (1.1): the manifest's canonical bytes and signature match docs/security.md")
    check_offline_outcome(vectors)
    print("offline outcome (1.1): the canonical bytes and signature match docs/security.md")
    check_telemetry(vectors)
    print("telemetry (1.1): the pushed report decodes as docs/protocol.md §3.5 says")
    return 0


if __name__ == "__main__":
    sys.exit(main())
