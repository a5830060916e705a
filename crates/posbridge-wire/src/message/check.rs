//! A money command checked against what a terminal said it can do, before anything is journaled
//! or sent — the same check for every protocol.

use alloc::vec::Vec;
use core::fmt;

use super::request::TransactionRequest;
use super::session::Capabilities;
use crate::types::{Amount, Currency, PaymentMethod, TransactionKind};

/// Why a money command does not fit the terminal's [`Capabilities`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapabilityError {
    /// The transaction kind is not enabled on the terminal.
    KindNotSupported(TransactionKind),
    /// The currency is not accepted by the terminal.
    CurrencyNotSupported {
        /// The currency asked for.
        currency: Currency,
        /// Those the terminal accepts.
        accepted: Vec<Currency>,
    },
    /// Payment methods asked for that the terminal does not offer.
    MethodNotSupported {
        /// The methods asked for that the terminal does not offer.
        methods: Vec<PaymentMethod>,
    },
    /// The amount is outside the terminal's limit for this kind and currency.
    AmountOutOfRange {
        /// The kind.
        kind: TransactionKind,
        /// The amount asked for.
        amount: Amount,
        /// The smallest allowed, in minor units.
        min: u64,
        /// The largest allowed, in minor units.
        max: u64,
    },
}

impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KindNotSupported(k) => write!(
                f,
                "the terminal does not offer {k:?}: enable it in the terminal's configuration"
            ),
            Self::CurrencyNotSupported { currency, accepted } => write!(
                f,
                "the terminal does not accept {currency:?} (it accepts {accepted:?})"
            ),
            Self::MethodNotSupported { methods } => write!(
                f,
                "the terminal does not offer the payment method(s) {methods:?}"
            ),
            Self::AmountOutOfRange {
                kind,
                amount,
                min,
                max,
            } => write!(
                f,
                "{} {:?} is outside the terminal's {kind:?} limit of {min}..={max} minor units",
                amount.minor, amount.currency
            ),
        }
    }
}

impl core::error::Error for CapabilityError {}

impl CapabilityError {
    /// The protocol's error code for it (what a terminal answers a request that does not fit).
    pub fn error_code(&self) -> crate::ErrorCode {
        match self {
            Self::KindNotSupported(_) => crate::ErrorCode::KIND_NOT_SUPPORTED,
            Self::CurrencyNotSupported { .. } => crate::ErrorCode::CURRENCY_NOT_SUPPORTED,
            Self::MethodNotSupported { .. } => crate::ErrorCode::METHOD_NOT_SUPPORTED,
            Self::AmountOutOfRange { .. } => crate::ErrorCode::AMOUNT_OUT_OF_RANGE,
        }
    }
}

impl Capabilities {
    /// Checks a money command against what the terminal can do: its kind, payment methods,
    /// currency and amount limits.
    pub fn check(&self, request: &TransactionRequest) -> Result<(), CapabilityError> {
        let kind = request.command.kind();
        if !self.kinds.contains(kind) {
            return Err(CapabilityError::KindNotSupported(kind));
        }
        if let Some(methods) = request.methods {
            let missing: Vec<PaymentMethod> = methods
                .iter()
                .filter(|m| !self.methods.contains(*m))
                .collect();
            if !missing.is_empty() {
                return Err(CapabilityError::MethodNotSupported { methods: missing });
            }
        }
        if let Some(amount) = request.command.amount() {
            if !self.currencies.contains(&amount.currency) {
                return Err(CapabilityError::CurrencyNotSupported {
                    currency: amount.currency,
                    accepted: self.currencies.clone(),
                });
            }
            if let Some(limit) = self
                .limits
                .iter()
                .find(|l| l.kind == kind && l.currency == amount.currency)
                && !(limit.min..=limit.max).contains(&amount.minor)
            {
                return Err(CapabilityError::AmountOutOfRange {
                    kind,
                    amount,
                    min: limit.min,
                    max: limit.max,
                });
            }
        }
        Ok(())
    }
}
