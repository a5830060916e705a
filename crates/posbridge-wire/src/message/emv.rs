//! Protocol 1.1: the EMV data card schemes require on receipts, carried in a transaction result
//! and covered by its signature.

use alloc::string::String;

use crate::tlv::{DecResult, EncResult, Field, Reader, Slot, Tlv, Writer, key};

small_enum! {
    /// How the cardholder was verified (the CVM the card and terminal performed).
    CardholderVerification {
        /// No verification (small contactless payments, some unattended terminals).
        NoCvm = 1,
        /// A PIN checked by the card.
        OfflinePin = 2,
        /// A PIN checked by the issuer.
        OnlinePin = 3,
        /// A signature on the receipt.
        Signature = 4,
        /// Verified on the customer's device (a phone or watch: fingerprint, face, passcode).
        ConsumerDevice = 5,
    }
}

small_enum! {
    /// What the card's application cryptogram is (its cryptogram information data).
    CryptogramType {
        /// Application authentication cryptogram: the card declined.
        Aac = 1,
        /// Transaction certificate: the card approved (offline, or after the issuer did).
        Tc = 2,
        /// Authorisation request cryptogram: the card asked for the issuer.
        Arqc = 3,
    }
}

/// The EMV fields schemes require on a chip or contactless receipt (protocol 1.1). Covered by
/// the result's signature (docs/security.md), so a receipt reprinted from the journal shows what
/// the terminal saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmvData {
    /// The application identifier (tag 4F), as 10 to 32 upper-case hex digits.
    pub aid: String,
    /// The application label (tag 50), as the card names itself ("VISA CREDIT").
    pub label: Option<String>,
    /// Terminal verification results (tag 95).
    pub tvr: [u8; 5],
    /// Transaction status information (tag 9B).
    pub tsi: [u8; 2],
    /// The authorisation response code (tag 8A) as two characters ("00"); absent when the
    /// issuer was not asked.
    pub arc: Option<String>,
    /// How the cardholder was verified.
    pub cvm: CardholderVerification,
    /// What the application cryptogram is.
    pub cryptogram_type: CryptogramType,
    /// The application cryptogram (tag 9F26).
    pub cryptogram: [u8; 8],
}

/// Longest application label.
const LABEL: u16 = 32;

mod fields {
    use super::key;
    pub(super) const AID: u8 = key(1, false);
    pub(super) const LABEL: u8 = key(2, false);
    pub(super) const TVR: u8 = key(3, false);
    pub(super) const TSI: u8 = key(4, false);
    pub(super) const ARC: u8 = key(5, false);
    pub(super) const CVM: u8 = key(6, false);
    pub(super) const CRYPTOGRAM_TYPE: u8 = key(7, false);
    pub(super) const CRYPTOGRAM: u8 = key(8, false);
}

impl EmvData {
    /// Whether `aid` is 10 to 32 upper-case hex digits, an even number of them.
    pub fn valid_aid(aid: &str) -> bool {
        (10..=32).contains(&aid.len())
            && aid.len().is_multiple_of(2)
            && aid
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    }

    /// Whether `arc` is two printable ASCII characters.
    pub fn valid_arc(arc: &str) -> bool {
        arc.len() == 2 && arc.bytes().all(|b| b.is_ascii_graphic())
    }
}

fn aid(f: &Field<'_>) -> DecResult<String> {
    let v = f.text(32)?;
    f.check(v, |v| EmvData::valid_aid(v))
}

fn arc(f: &Field<'_>) -> DecResult<String> {
    let v = f.text(2)?;
    f.check(v, |v| EmvData::valid_arc(v))
}

impl Tlv for EmvData {
    fn encode_fields(&self, w: &mut Writer<'_>) -> EncResult {
        use fields::*;
        if !Self::valid_aid(&self.aid) {
            return Err(crate::MessageEncodeError::InvalidValue { key: AID });
        }
        if self.arc.as_deref().is_some_and(|a| !Self::valid_arc(a)) {
            return Err(crate::MessageEncodeError::InvalidValue { key: ARC });
        }
        w.text(AID, &self.aid, 32)?;
        w.opt_text(LABEL, self.label.as_deref(), super::emv::LABEL)?;
        w.bytes(TVR, &self.tvr, 5)?;
        w.bytes(TSI, &self.tsi, 2)?;
        w.opt_text(ARC, self.arc.as_deref(), 2)?;
        w.uint(CVM, self.cvm as u64);
        w.uint(CRYPTOGRAM_TYPE, self.cryptogram_type as u64);
        w.bytes(CRYPTOGRAM, &self.cryptogram, 8)
    }

    fn decode_fields(r: &mut Reader<'_>) -> DecResult<Self> {
        use fields::*;
        let (mut aid_, mut label, mut tvr, mut tsi) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        let (mut arc_, mut cvm, mut kind, mut cryptogram) = (
            Slot::default(),
            Slot::default(),
            Slot::default(),
            Slot::default(),
        );
        while let Some(f) = r.next_field()? {
            match f.key {
                AID => aid_.set(&f, aid(&f))?,
                LABEL => label.set(&f, f.text(super::emv::LABEL))?,
                TVR => tvr.set(&f, f.array())?,
                TSI => tsi.set(&f, f.array())?,
                ARC => arc_.set(&f, arc(&f))?,
                CVM => cvm.set(&f, f.code(CardholderVerification::from_code))?,
                CRYPTOGRAM_TYPE => kind.set(&f, f.code(CryptogramType::from_code))?,
                CRYPTOGRAM => cryptogram.set(&f, f.array())?,
                _ => f.unknown()?,
            }
        }
        Ok(Self {
            aid: aid_.required(AID, r)?,
            label: label.get(),
            tvr: tvr.required(TVR, r)?,
            tsi: tsi.required(TSI, r)?,
            arc: arc_.get(),
            cvm: cvm.required(CVM, r)?,
            cryptogram_type: kind.required(CRYPTOGRAM_TYPE, r)?,
            cryptogram: cryptogram.required(CRYPTOGRAM, r)?,
        })
    }
}
