//! Terminals of two protocols as one [`PaymentTerminal`]: [`Either`].

use std::error::Error;
use std::fmt;
use std::time::Duration;

use posbridge_wire::{
    Capabilities, CustomerReply, IdempotencyKey, LeaseState, Receipt, ReceiptCopy,
    SettlementResult, Telemetry, TransactionCommand, TransactionRef, TransactionResult,
    TransactionStatus, UpdateManifest, UpdateState,
};

use crate::{
    Call, Cart, CustomerPrompt, PaymentError, PaymentTerminal, ProgressEvents, RecoveryReport,
    TelemetryEvents,
};

/// One of two terminals — of the native protocol or ZVT, say, chosen when the app starts —
/// as one [`PaymentTerminal`], so that the code that takes money names no protocol.
#[derive(Debug)]
pub enum Either<A, B> {
    /// The first kind.
    Left(A),
    /// The second kind.
    Right(B),
}

/// The error of an [`Either`]: the error of whichever terminal it is.
#[derive(Debug)]
pub enum EitherError<A, B> {
    /// The first kind's.
    Left(A),
    /// The second kind's.
    Right(B),
}

impl<A: fmt::Display, B: fmt::Display> fmt::Display for EitherError<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Left(e) => e.fmt(f),
            Self::Right(e) => e.fmt(f),
        }
    }
}

impl<A: Error + 'static, B: Error + 'static> Error for EitherError<A, B> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Left(e) => Some(e),
            Self::Right(e) => Some(e),
        }
    }
}

type Out<T, A, B> = Result<
    T,
    PaymentError<EitherError<<A as PaymentTerminal>::Error, <B as PaymentTerminal>::Error>>,
>;

/// Runs the same call on whichever terminal it is, its error wrapped.
macro_rules! both {
    ($self:ident, $t:ident => $call:expr) => {
        match $self {
            Either::Left($t) => $call.await.map_err(|e| e.map_source(EitherError::Left)),
            Either::Right($t) => $call.await.map_err(|e| e.map_source(EitherError::Right)),
        }
    };
}

impl<A: PaymentTerminal, B: PaymentTerminal> PaymentTerminal for Either<A, B> {
    type Error = EitherError<A::Error, B::Error>;

    fn capabilities(&self) -> &Capabilities {
        match self {
            Self::Left(t) => t.capabilities(),
            Self::Right(t) => t.capabilities(),
        }
    }

    fn progress(&self) -> ProgressEvents {
        match self {
            Self::Left(t) => t.progress(),
            Self::Right(t) => t.progress(),
        }
    }

    fn telemetry_events(&self) -> TelemetryEvents {
        match self {
            Self::Left(t) => t.telemetry_events(),
            Self::Right(t) => t.telemetry_events(),
        }
    }

    async fn telemetry(&self, deadline: Duration) -> Out<Option<Telemetry>, A, B> {
        both!(self, t => t.telemetry(deadline))
    }

    async fn acquire(
        &self,
        holder: &str,
        duration: Duration,
        wait: Option<Duration>,
    ) -> Out<Option<LeaseState>, A, B> {
        both!(self, t => t.acquire(holder, duration, wait))
    }

    async fn update(
        &self,
        manifest: &UpdateManifest,
        image: &[u8],
        progress: &(dyn Fn(u32, u32) + Sync),
    ) -> Out<Option<UpdateState>, A, B> {
        both!(self, t => t.update(manifest, image, progress))
    }

    async fn release(&self) -> Out<(), A, B> {
        both!(self, t => t.release())
    }

    async fn show_cart(&self, cart: &Cart, deadline: Duration) -> Out<bool, A, B> {
        both!(self, t => t.show_cart(cart, deadline))
    }

    async fn ask_customer(&self, prompt: &CustomerPrompt) -> Out<Option<CustomerReply>, A, B> {
        both!(self, t => t.ask_customer(prompt))
    }

    async fn execute(
        &self,
        key: IdempotencyKey,
        command: TransactionCommand,
        call: Call,
    ) -> Out<TransactionResult, A, B> {
        both!(self, t => t.execute(key, command, call))
    }

    async fn status(
        &self,
        key: IdempotencyKey,
        deadline: Duration,
    ) -> Out<TransactionStatus, A, B> {
        both!(self, t => t.status(key, deadline))
    }

    async fn recover(&self, deadline: Duration) -> Out<RecoveryReport, A, B> {
        both!(self, t => t.recover(deadline))
    }

    async fn last_transaction(&self, deadline: Duration) -> Out<Option<TransactionResult>, A, B> {
        both!(self, t => t.last_transaction(deadline))
    }

    async fn cancel(&self) -> Out<(), A, B> {
        both!(self, t => t.cancel())
    }

    async fn settle(&self, key: IdempotencyKey, call: Call) -> Out<SettlementResult, A, B> {
        both!(self, t => t.settle(key, call))
    }

    async fn receipt(
        &self,
        target: TransactionRef,
        copy: ReceiptCopy,
        deadline: Duration,
    ) -> Out<Receipt, A, B> {
        both!(self, t => t.receipt(target, copy, deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;
    use crate::testing::ScriptedTerminal;
    use posbridge_journal::MemoryJournal;
    use posbridge_wire::{Amount, Currency, Outcome};

    #[tokio::test]
    async fn either_kind_takes_money_through_one_type() {
        type T = Engine<ScriptedTerminal, MemoryJournal>;
        let terminals: [Either<T, T>; 2] = [
            Either::Left(Engine::new(
                ScriptedTerminal::approving(),
                MemoryJournal::new(),
            )),
            Either::Right(Engine::new(
                ScriptedTerminal::new(false),
                MemoryJournal::new(),
            )),
        ];
        for (i, t) in terminals.iter().enumerate() {
            let r = t
                .sale(
                    IdempotencyKey::from_u128(i as u128 + 1),
                    Amount::new(500, Currency::EUR),
                    Call::within(Duration::from_secs(5)),
                )
                .await
                .unwrap();
            assert_eq!(r.outcome, Outcome::Approved);
            assert!(t.recover(Duration::from_secs(5)).await.unwrap().is_clean());
        }
    }
}
