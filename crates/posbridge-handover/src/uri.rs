//! The `posbridge://pair?...` URI, for QR codes.

use std::fmt;
use std::fmt::Write as _;

use crate::{
    ContentError, Handover, MAX_LIST, PairingSecret, TcpEndpoint, UsbTarget, VERSION, check_limits,
};

const PREFIX: &str = "posbridge://pair?";
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why a text is not a valid handover URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriError {
    /// It does not start with `posbridge://pair?`: a QR code of something else.
    NotPosbridge,
    /// A required parameter is missing.
    Missing(&'static str),
    /// A parameter that may appear once appears twice.
    Duplicate(&'static str),
    /// A parameter's value is malformed.
    Invalid(&'static str),
    /// A `%` escape is malformed or the result is not UTF-8.
    BadEscape,
    /// The content is invalid.
    Content(ContentError),
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPosbridge => {
                f.write_str("not a posbridge pairing code (expected posbridge://pair?...)")
            }
            Self::Missing(p) => write!(f, "the pairing code lacks `{p}`"),
            Self::Duplicate(p) => write!(f, "`{p}` appears twice in the pairing code"),
            Self::Invalid(p) => write!(f, "`{p}` is malformed in the pairing code"),
            Self::BadEscape => f.write_str("malformed %-escape in the pairing code"),
            Self::Content(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for UriError {}

impl From<ContentError> for UriError {
    fn from(e: ContentError) -> Self {
        Self::Content(e)
    }
}

fn escape(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn unescape(text: &str) -> Result<String, UriError> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or(UriError::BadEscape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UriError::BadEscape)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError::BadEscape)
}

fn hex(out: &mut String, bytes: &[u8], sep: &str) {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        let _ = write!(out, "{b:02X}");
    }
}

fn unhex<const N: usize>(text: &str, name: &'static str) -> Result<[u8; N], UriError> {
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b':').collect();
    if digits.len() != 2 * N {
        return Err(UriError::Invalid(name));
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| UriError::Invalid(name))?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| UriError::Invalid(name))?;
    }
    Ok(out)
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &b in bytes {
        acc = acc << 8 | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[(acc >> bits) as usize & 31] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[(acc << (5 - bits)) as usize & 31] as char);
    }
    out
}

fn unbase32<const N: usize>(text: &str) -> Result<[u8; N], UriError> {
    let bad = UriError::Invalid("s");
    if text.len() != (N * 8).div_ceil(5) {
        return Err(bad);
    }
    let mut out = [0u8; N];
    let (mut acc, mut bits, mut n) = (0u32, 0, 0);
    for c in text.bytes() {
        let v = BASE32
            .iter()
            .position(|&x| x == c.to_ascii_uppercase())
            .ok_or(bad)? as u32;
        acc = (acc << 5 | v) & 0xFFF;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if n == N {
                return Err(bad);
            }
            out[n] = (acc >> bits) as u8;
            n += 1;
        }
    }
    // The unused low bits of the last character must be zero (one spelling per secret).
    if n != N || acc & ((1 << bits) - 1) != 0 {
        return Err(bad);
    }
    Ok(out)
}

impl Handover {
    /// The `posbridge://pair?...` URI: `v` (version), `t` (terminal id, 32 hex digits), `n`
    /// (name), `tcp` (host:port, repeated), `pin` (TLS fingerprint, 64 hex digits), `ble`
    /// (address `AA:BB:CC:DD:EE:FF`), `bn` (BLE name), `usb` (`vid:pid[:serial]` in hex,
    /// repeated), `s` (pairing secret, 26 base32 characters). Text is %-escaped.
    pub fn to_uri(&self) -> String {
        let mut out = String::from(PREFIX);
        let _ = write!(out, "v={VERSION}&t=");
        hex(&mut out, &self.terminal_id, "");
        if let Some(n) = &self.name {
            out.push_str("&n=");
            escape(&mut out, n);
        }
        for t in &self.tcp {
            out.push_str("&tcp=");
            // Brackets around an IPv6 address — and around any host that starts with one itself,
            // which the reader would otherwise take for brackets and strip (found by the
            // round-trip property: a host `[]` came back empty).
            if t.host.contains(':') || t.host.starts_with('[') {
                escape(&mut out, &format!("[{}]", t.host));
            } else {
                escape(&mut out, &t.host);
            }
            let _ = write!(out, ":{}", t.port);
        }
        if let Some(pin) = &self.tls_pin {
            out.push_str("&pin=");
            hex(&mut out, pin, "");
        }
        if let Some(a) = &self.ble_address {
            out.push_str("&ble=");
            hex(&mut out, a, ":");
        }
        if let Some(n) = &self.ble_name {
            out.push_str("&bn=");
            escape(&mut out, n);
        }
        for u in &self.usb {
            let _ = write!(out, "&usb={:04X}:{:04X}", u.vid, u.pid);
            if let Some(s) = &u.serial_number {
                out.push(':');
                escape(&mut out, s);
            }
        }
        if let Some(s) = &self.pairing_secret {
            out.push_str("&s=");
            out.push_str(&base32(s.expose()));
        }
        out
    }

    /// Reads a `posbridge://pair?...` URI. Parameters this version does not know are skipped.
    pub fn from_uri(uri: &str) -> Result<Self, UriError> {
        let query = uri
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .map(|_| &uri[PREFIX.len()..])
            .ok_or(UriError::NotPosbridge)?;
        let mut h = Self::new([0; 16]);
        let (mut version, mut have_id) = (None, false);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let once = |present: bool, name| {
                if present {
                    Err(UriError::Duplicate(name))
                } else {
                    Ok(())
                }
            };
            match key {
                "v" => {
                    once(version.is_some(), "v")?;
                    version = Some(raw.parse::<u8>().map_err(|_| UriError::Invalid("v"))?);
                }
                "t" => {
                    once(have_id, "t")?;
                    h.terminal_id = unhex::<16>(raw, "t")?;
                    have_id = true;
                }
                "n" => {
                    once(h.name.is_some(), "n")?;
                    h.name = Some(unescape(raw)?);
                }
                "tcp" => {
                    let text = unescape(raw)?;
                    let (host, port) = text.rsplit_once(':').ok_or(UriError::Invalid("tcp"))?;
                    let host = host
                        .strip_prefix('[')
                        .and_then(|h| h.strip_suffix(']'))
                        .unwrap_or(host);
                    if h.tcp.len() >= MAX_LIST || host.is_empty() {
                        return Err(UriError::Invalid("tcp"));
                    }
                    h.tcp.push(TcpEndpoint {
                        host: host.to_string(),
                        port: port.parse().map_err(|_| UriError::Invalid("tcp"))?,
                    });
                }
                "pin" => {
                    once(h.tls_pin.is_some(), "pin")?;
                    h.tls_pin = Some(unhex::<32>(raw, "pin")?);
                }
                "ble" => {
                    once(h.ble_address.is_some(), "ble")?;
                    h.ble_address = Some(unhex::<6>(raw, "ble")?);
                }
                "bn" => {
                    once(h.ble_name.is_some(), "bn")?;
                    h.ble_name = Some(unescape(raw)?);
                }
                "usb" => {
                    let mut parts = raw.splitn(3, ':');
                    let mut id = || {
                        parts
                            .next()
                            .filter(|p| p.len() == 4)
                            .and_then(|p| u16::from_str_radix(p, 16).ok())
                            .ok_or(UriError::Invalid("usb"))
                    };
                    let (vid, pid) = (id()?, id()?);
                    let serial_number = parts.next().map(unescape).transpose()?;
                    if h.usb.len() >= MAX_LIST {
                        return Err(UriError::Invalid("usb"));
                    }
                    h.usb.push(UsbTarget {
                        vid,
                        pid,
                        serial_number,
                    });
                }
                "s" => {
                    once(h.pairing_secret.is_some(), "s")?;
                    h.pairing_secret = Some(PairingSecret::from_bytes(unbase32::<16>(raw)?));
                }
                _ => {}
            }
        }
        match version {
            Some(VERSION) => {}
            Some(v) => return Err(ContentError::UnsupportedVersion(v).into()),
            None => return Err(UriError::Missing("v")),
        }
        if !have_id {
            return Err(UriError::Missing("t"));
        }
        check_limits(&h)?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 §10, without padding.
        for (plain, encoded) in [
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), encoded);
        }
        let secret = [0xA5u8; 16];
        let text = base32(&secret);
        assert_eq!(text.len(), 26);
        assert_eq!(unbase32::<16>(&text).unwrap(), secret);
        assert_eq!(unbase32::<16>(&text.to_lowercase()).unwrap(), secret);
        // Non-zero spare bits would be a second spelling of the same bytes: refused.
        let last = BASE32
            .iter()
            .position(|&x| x == text.as_bytes()[25])
            .unwrap();
        let other = format!("{}{}", &text[..25], BASE32[last ^ 1] as char);
        assert_eq!(unbase32::<16>(&other), Err(UriError::Invalid("s")));
        assert_eq!(unbase32::<16>(&text[..25]), Err(UriError::Invalid("s")));
    }
}
