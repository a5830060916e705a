//! Test cards: what the simulated customer presents, and how the simulated issuer answers.
//!
//! A card is chosen by the amount's last two digits (the minor units modulo 100), the way
//! acquirers' test hosts do, unless a scenario presents one explicitly.

use posbridge_wire::{DeclineReason, ErrorCode, MaskedPan, PaymentMethod};

/// How a test card behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CardBehaviour {
    /// Approved in full.
    Approve,
    /// Declined by the issuer for `reason`.
    Decline(DeclineReason),
    /// Asks for the PIN, then approves.
    PinRequired,
    /// Asks for the PIN; the customer gets it wrong: declined (`WRONG_PIN`).
    WrongPin,
    /// The card is pulled out during the transaction: failed (`CARD_REMOVED`).
    CardRemoved,
    /// Nobody presents a card: failed (`TIMEOUT`) after the card wait.
    NoCard,
    /// The issuer approves only `percent` % of the amount (partial approval).
    Partial {
        /// The share approved.
        percent: u8,
    },
    /// The issuer cannot be reached: approved offline when the amount is within the floor limit,
    /// declined (`ISSUER_UNAVAILABLE`) above it.
    IssuerOffline,
}

impl CardBehaviour {
    /// The card the amount's last two digits select (see docs/simulator.md).
    pub fn for_amount(minor: u64) -> Self {
        match minor % 100 {
            5 => Self::Decline(DeclineReason::DO_NOT_HONOUR),
            14 => Self::Decline(DeclineReason::INVALID_CARD),
            51 => Self::Decline(DeclineReason::INSUFFICIENT_FUNDS),
            54 => Self::Decline(DeclineReason::EXPIRED_CARD),
            55 => Self::WrongPin,
            57 => Self::Decline(DeclineReason::NOT_PERMITTED),
            59 => Self::Decline(DeclineReason::SUSPECTED_FRAUD),
            61 => Self::Decline(DeclineReason::LIMIT_EXCEEDED),
            20 => Self::PinRequired,
            13 => Self::CardRemoved,
            18 => Self::NoCard,
            10 => Self::Partial { percent: 50 },
            91 => Self::IssuerOffline,
            _ => Self::Approve,
        }
    }

    /// Whether the customer is asked for a PIN.
    pub fn asks_pin(self) -> bool {
        matches!(self, Self::PinRequired | Self::WrongPin)
    }

    /// The failure this card ends in before any authorisation, if any.
    pub fn failure(self) -> Option<ErrorCode> {
        match self {
            Self::CardRemoved => Some(ErrorCode::CARD_REMOVED),
            Self::NoCard => Some(ErrorCode::TIMEOUT),
            _ => None,
        }
    }
}

/// A simulated card: what is printed on the receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCard {
    /// Its scheme (`VISA`, `MASTERCARD`, `GIROCARD`, ...).
    pub scheme: &'static str,
    /// The masked number.
    pub pan: MaskedPan,
    /// The EMV application id, hex.
    pub aid: &'static str,
    /// The application label.
    pub label: &'static str,
}

impl TestCard {
    /// The card the simulator presents for `method` (the scheme rotates with the amount so that
    /// receipts and journals show more than one).
    pub fn for_method(method: PaymentMethod, minor: u64) -> Self {
        let (scheme, pan, aid, label) = match (method, (minor / 100) % 3) {
            (PaymentMethod::Wallet, _) => {
                ("VISA", "489537******0196", "A0000000031010", "VISA TOKEN")
            }
            (_, 0) => ("VISA", "411111******1111", "A0000000031010", "VISA CREDIT"),
            (_, 1) => (
                "MASTERCARD",
                "555555******4444",
                "A0000000041010",
                "MASTERCARD",
            ),
            _ => ("GIROCARD", "672559******0013", "A0000003591010", "GIROCARD"),
        };
        Self {
            scheme,
            pan: MaskedPan::parse(pan).expect("the test PANs are masked"),
            aid,
            label,
        }
    }
}
