//! The field encoding of message bodies (docs/protocol.md, "Message encoding").
//!
//! A structure is a sequence of fields `key, length, value`: the key is one byte (field number
//! × 2, plus 1 if the field is *critical*), the length is LEB128 in its shortest form, and the
//! value's meaning depends on the field. Keys ascend; a key repeats only for list fields.

use alloc::string::String;
use alloc::vec::Vec;
use bytes::{BufMut, BytesMut};

use crate::error::{MessageEncodeError, MessageError, MessageErrorKind};

/// The key of field `number`; `critical` fields must be understood by the receiver.
pub(crate) const fn key(number: u8, critical: bool) -> u8 {
    number << 1 | critical as u8
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn put_varint(buf: &mut BytesMut, mut n: usize) {
    while n >= 0x80 {
        buf.put_u8(n as u8 | 0x80);
        n >>= 7;
    }
    buf.put_u8(n as u8);
}

pub(crate) type EncResult = Result<(), MessageEncodeError>;

/// Appends fields to a buffer.
pub(crate) struct Writer<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut BytesMut) -> Self {
        Self { buf }
    }

    fn header(&mut self, key: u8, len: usize) {
        self.buf.put_u8(key);
        put_varint(self.buf, len);
    }

    pub(crate) fn uint(&mut self, key: u8, value: u64) {
        let n = (64 - value.leading_zeros() as usize).div_ceil(8);
        self.header(key, n);
        self.buf.extend_from_slice(&value.to_be_bytes()[8 - n..]);
    }

    pub(crate) fn opt_uint(&mut self, key: u8, value: Option<u64>) {
        if let Some(v) = value {
            self.uint(key, v);
        }
    }

    /// A flag: present with an empty value when true, absent when false.
    pub(crate) fn flag(&mut self, key: u8, value: bool) {
        if value {
            self.header(key, 0);
        }
    }

    pub(crate) fn bytes(&mut self, key: u8, value: &[u8], max: u16) -> EncResult {
        if value.len() > usize::from(max) {
            return Err(MessageEncodeError::TooLong {
                key,
                len: value.len(),
                max,
            });
        }
        self.header(key, value.len());
        self.buf.extend_from_slice(value);
        Ok(())
    }

    pub(crate) fn text(&mut self, key: u8, value: &str, max: u16) -> EncResult {
        self.bytes(key, value.as_bytes(), max)
    }

    pub(crate) fn opt_text(&mut self, key: u8, value: Option<&str>, max: u16) -> EncResult {
        match value {
            Some(v) => self.text(key, v, max),
            None => Ok(()),
        }
    }

    pub(crate) fn id(&mut self, key: u8, value: &[u8; 16]) {
        self.header(key, 16);
        self.buf.extend_from_slice(value);
    }

    /// A packed list of big-endian `u16`s.
    pub(crate) fn u16_list(&mut self, key: u8, values: &[u16], max: u16) -> EncResult {
        check_count(key, values.len(), max)?;
        self.header(key, values.len() * 2);
        for v in values {
            self.buf.put_u16(*v);
        }
        Ok(())
    }

    /// A nested structure whose fields `f` writes.
    pub(crate) fn nested(
        &mut self,
        key: u8,
        f: impl FnOnce(&mut Writer<'_>) -> EncResult,
    ) -> EncResult {
        self.buf.put_u8(key);
        let len_at = self.buf.len();
        self.buf.put_u8(0);
        let value_at = self.buf.len();
        f(&mut Writer { buf: self.buf })?;
        let len = self.buf.len() - value_at;
        let extra = varint_len(len) - 1;
        if extra > 0 {
            self.buf.put_bytes(0, extra);
            self.buf
                .copy_within(value_at..value_at + len, value_at + extra);
        }
        let mut n = len;
        for slot in &mut self.buf[len_at..=len_at + extra] {
            *slot = n as u8 & 0x7F;
            n >>= 7;
        }
        for slot in &mut self.buf[len_at..len_at + extra] {
            *slot |= 0x80;
        }
        Ok(())
    }

    pub(crate) fn item<T: Tlv>(&mut self, key: u8, value: &T) -> EncResult {
        self.nested(key, |w| value.encode_fields(w))
    }

    pub(crate) fn opt_item<T: Tlv>(&mut self, key: u8, value: Option<&T>) -> EncResult {
        match value {
            Some(v) => self.item(key, v),
            None => Ok(()),
        }
    }

    /// A list of structures, one repeated field each.
    pub(crate) fn items<T: Tlv>(&mut self, key: u8, values: &[T], max: u16) -> EncResult {
        check_count(key, values.len(), max)?;
        values.iter().try_for_each(|v| self.item(key, v))
    }
}

pub(crate) fn check_count(key: u8, len: usize, max: u16) -> EncResult {
    if len > usize::from(max) {
        return Err(MessageEncodeError::TooMany { key, len, max });
    }
    Ok(())
}

/// A structure that has a field encoding.
pub(crate) trait Tlv: Sized {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult;
    fn decode_fields(r: &mut Reader<'_>) -> Result<Self, MessageError>;
}

/// Reads the fields of one structure.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    last_key: u8,
}

/// One field as read: its key, its value, and the offset of its key byte in the message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field<'a> {
    pub(crate) key: u8,
    pub(crate) value: &'a [u8],
    pub(crate) offset: usize,
    value_offset: usize,
}

pub(crate) type DecResult<T> = Result<T, MessageError>;

impl<'a> Reader<'a> {
    /// A reader over `buf`, which starts at offset `base` of the message.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Self {
            buf,
            pos: 0,
            base,
            last_key: 0,
        }
    }

    /// The message offset just past this structure (where missing fields are reported).
    pub(crate) fn end(&self) -> usize {
        self.base + self.buf.len()
    }

    /// The error for a required field that is absent.
    pub(crate) fn missing(&self, key: u8) -> MessageError {
        MessageError {
            kind: MessageErrorKind::Missing { key },
            offset: self.end(),
        }
    }

    fn fail(&self, kind: MessageErrorKind, at: usize) -> MessageError {
        MessageError {
            kind,
            offset: self.base + at,
        }
    }

    /// The next field, or `None` at the end of the structure.
    pub(crate) fn next_field(&mut self) -> DecResult<Option<Field<'a>>> {
        let start = self.pos;
        let Some(&key) = self.buf.get(start) else {
            return Ok(None);
        };
        if key < 2 {
            return Err(self.fail(MessageErrorKind::ReservedKey, start));
        }
        if key < self.last_key {
            return Err(self.fail(MessageErrorKind::OutOfOrder { key }, start));
        }
        let mut len = 0usize;
        let mut at = start + 1;
        let mut shift = 0;
        loop {
            let Some(&b) = self.buf.get(at) else {
                return Err(self.fail(MessageErrorKind::Truncated, start));
            };
            at += 1;
            if shift == 21 {
                // Three bytes carry 21 bits: more than any message can hold.
                return Err(self.fail(MessageErrorKind::Truncated, start));
            }
            len |= usize::from(b & 0x7F) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if b == 0 && shift > 7 {
                    return Err(self.fail(MessageErrorKind::NonMinimalLength, start));
                }
                break;
            }
        }
        if len > self.buf.len() - at {
            return Err(self.fail(MessageErrorKind::Truncated, start));
        }
        self.pos = at + len;
        self.last_key = key;
        Ok(Some(Field {
            key,
            value: &self.buf[at..at + len],
            offset: self.base + start,
            value_offset: self.base + at,
        }))
    }
}

impl<'a> Field<'a> {
    pub(crate) fn fail(&self, kind: MessageErrorKind) -> MessageError {
        MessageError {
            kind,
            offset: self.offset,
        }
    }

    fn invalid(&self) -> MessageError {
        self.fail(MessageErrorKind::InvalidValue { key: self.key })
    }

    /// Skips a field this version does not know, unless it is critical.
    pub(crate) fn unknown(&self) -> DecResult<()> {
        if self.key & 1 == 1 {
            Err(self.fail(MessageErrorKind::UnknownCritical { key: self.key }))
        } else {
            Ok(())
        }
    }

    pub(crate) fn uint(&self) -> DecResult<u64> {
        if self.value.len() > 8 {
            return Err(self.fail(MessageErrorKind::InvalidLength { key: self.key }));
        }
        if self.value.first() == Some(&0) {
            return Err(self.fail(MessageErrorKind::NonCanonical { key: self.key }));
        }
        Ok(self
            .value
            .iter()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    pub(crate) fn uint_in(&self, max: u64) -> DecResult<u64> {
        let v = self.uint()?;
        if v > max {
            return Err(self.invalid());
        }
        Ok(v)
    }

    pub(crate) fn u8(&self) -> DecResult<u8> {
        self.uint_in(u64::from(u8::MAX)).map(|v| v as u8)
    }

    pub(crate) fn u16(&self) -> DecResult<u16> {
        self.uint_in(u64::from(u16::MAX)).map(|v| v as u16)
    }

    pub(crate) fn u32(&self) -> DecResult<u32> {
        self.uint_in(u64::from(u32::MAX)).map(|v| v as u32)
    }

    /// A bit set that is only encoded when not empty.
    pub(crate) fn nonzero_u32(&self) -> DecResult<u32> {
        match self.u32()? {
            0 => Err(self.fail(MessageErrorKind::NonCanonical { key: self.key })),
            v => Ok(v),
        }
    }

    /// A value that must map to a known code.
    pub(crate) fn code<T>(&self, from: impl FnOnce(u8) -> Option<T>) -> DecResult<T> {
        from(self.u8()?).ok_or_else(|| self.invalid())
    }

    /// An arbitrary check on a decoded value.
    pub(crate) fn check<T>(&self, value: T, ok: impl FnOnce(&T) -> bool) -> DecResult<T> {
        if ok(&value) {
            Ok(value)
        } else {
            Err(self.invalid())
        }
    }

    pub(crate) fn flag(&self) -> DecResult<bool> {
        if !self.value.is_empty() {
            return Err(self.fail(MessageErrorKind::NonCanonical { key: self.key }));
        }
        Ok(true)
    }

    pub(crate) fn bool(&self) -> DecResult<bool> {
        match self.uint()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid()),
        }
    }

    pub(crate) fn bytes(&self, max: u16) -> DecResult<Vec<u8>> {
        if self.value.len() > usize::from(max) {
            return Err(self.fail(MessageErrorKind::TooLong { key: self.key, max }));
        }
        Ok(self.value.to_vec())
    }

    pub(crate) fn text(&self, max: u16) -> DecResult<String> {
        if self.value.len() > usize::from(max) {
            return Err(self.fail(MessageErrorKind::TooLong { key: self.key, max }));
        }
        match core::str::from_utf8(self.value) {
            Ok(s) => Ok(String::from(s)),
            Err(_) => Err(self.fail(MessageErrorKind::InvalidUtf8 { key: self.key })),
        }
    }

    pub(crate) fn array<const N: usize>(&self) -> DecResult<[u8; N]> {
        self.value
            .try_into()
            .map_err(|_| self.fail(MessageErrorKind::InvalidLength { key: self.key }))
    }

    pub(crate) fn u16_list(&self, max: u16) -> DecResult<Vec<u16>> {
        if !self.value.len().is_multiple_of(2) {
            return Err(self.fail(MessageErrorKind::InvalidLength { key: self.key }));
        }
        if self.value.len() / 2 > usize::from(max) {
            return Err(self.fail(MessageErrorKind::TooMany { key: self.key, max }));
        }
        Ok(self
            .value
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect())
    }

    pub(crate) fn item<T: Tlv>(&self) -> DecResult<T> {
        self.nested(T::decode_fields)
    }

    /// Reads the value as a nested structure with `f`.
    pub(crate) fn nested<T>(
        &self,
        f: impl FnOnce(&mut Reader<'a>) -> DecResult<T>,
    ) -> DecResult<T> {
        f(&mut Reader::new(self.value, self.value_offset))
    }
}

/// A field value seen at most once, with where it was seen.
pub(crate) struct Slot<T> {
    value: Option<T>,
    at: usize,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self { value: None, at: 0 }
    }
}

impl<T> Slot<T> {
    /// Stores the value of `f`, refusing a second one.
    pub(crate) fn set(&mut self, f: &Field<'_>, value: DecResult<T>) -> DecResult<()> {
        if self.value.is_some() {
            return Err(f.fail(MessageErrorKind::Duplicate { key: f.key }));
        }
        self.value = Some(value?);
        self.at = f.offset;
        Ok(())
    }

    /// The value, which must be present.
    pub(crate) fn required(self, key: u8, r: &Reader<'_>) -> DecResult<T> {
        self.value.ok_or_else(|| r.missing(key))
    }

    pub(crate) fn get(self) -> Option<T> {
        self.value
    }

    pub(crate) fn is_some(&self) -> bool {
        self.value.is_some()
    }

    /// An error pointing at this field: its value does not fit with the others.
    pub(crate) fn invalid(&self, key: u8) -> MessageError {
        MessageError {
            kind: MessageErrorKind::InvalidValue { key },
            offset: self.at,
        }
    }
}

/// Appends a repeated field's value, refusing more than `max`.
pub(crate) fn push<T>(
    list: &mut Vec<T>,
    f: &Field<'_>,
    value: DecResult<T>,
    max: u16,
) -> DecResult<()> {
    if list.len() >= usize::from(max) {
        return Err(f.fail(MessageErrorKind::TooMany { key: f.key, max }));
    }
    list.push(value?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_is_minimal_big_endian() {
        for (v, hex) in [
            (0u64, &[][..]),
            (1, &[1][..]),
            (255, &[0xFF][..]),
            (256, &[1, 0][..]),
            (u64::MAX, &[0xFF; 8][..]),
        ] {
            let mut buf = BytesMut::new();
            Writer::new(&mut buf).uint(key(1, false), v);
            assert_eq!(buf[1] as usize, hex.len());
            assert_eq!(&buf[2..], hex);
            let f = Reader::new(&buf, 0).next_field().unwrap().unwrap();
            assert_eq!(f.uint().unwrap(), v);
        }
        let buf = [key(1, false), 2, 0, 5];
        let f = Reader::new(&buf, 0).next_field().unwrap().unwrap();
        assert_eq!(
            f.uint().unwrap_err().kind,
            MessageErrorKind::NonCanonical { key: 2 }
        );
    }

    #[test]
    fn nested_lengths_grow_in_place() {
        for inner_len in [0usize, 1, 127, 128, 300, 16383, 16384, 20000] {
            let mut buf = BytesMut::new();
            let payload = alloc::vec![0x5Au8; inner_len];
            Writer::new(&mut buf)
                .nested(key(3, true), |w| w.bytes(key(1, false), &payload, u16::MAX))
                .unwrap();
            let mut r = Reader::new(&buf, 0);
            let outer = r.next_field().unwrap().unwrap();
            assert_eq!(outer.key, 7);
            let mut inner = Reader::new(outer.value, 0);
            let f = inner.next_field().unwrap().unwrap();
            assert_eq!(f.value, &payload[..]);
            assert!(r.next_field().unwrap().is_none());
        }
    }

    #[test]
    fn lengths_must_be_minimal_and_in_bounds() {
        let buf = [key(1, false), 0x81, 0x00, 0xAA];
        assert_eq!(
            Reader::new(&buf, 10).next_field().unwrap_err(),
            MessageError {
                kind: MessageErrorKind::NonMinimalLength,
                offset: 10
            }
        );
        let buf = [key(1, false), 5, 0xAA];
        assert_eq!(
            Reader::new(&buf, 0).next_field().unwrap_err().kind,
            MessageErrorKind::Truncated
        );
        let buf = [key(1, false), 0x80, 0x80, 0x80, 0x01];
        assert_eq!(
            Reader::new(&buf, 0).next_field().unwrap_err().kind,
            MessageErrorKind::Truncated
        );
    }

    #[test]
    fn keys_ascend_and_critical_unknowns_fail() {
        let buf = [key(2, false), 0, key(1, false), 0];
        let mut r = Reader::new(&buf, 0);
        r.next_field().unwrap();
        assert_eq!(
            r.next_field().unwrap_err(),
            MessageError {
                kind: MessageErrorKind::OutOfOrder { key: 2 },
                offset: 2
            }
        );
        let buf = [key(9, true), 0];
        let f = Reader::new(&buf, 0).next_field().unwrap().unwrap();
        assert_eq!(
            f.unknown().unwrap_err().kind,
            MessageErrorKind::UnknownCritical { key: 19 }
        );
        let buf = [key(9, false), 0];
        let f = Reader::new(&buf, 0).next_field().unwrap().unwrap();
        assert!(f.unknown().is_ok());
    }
}
