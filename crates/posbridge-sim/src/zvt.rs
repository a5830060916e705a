//! The simulator's ZVT mode: the same simulated terminal — test cards, pace, batch, faults —
//! answering a cash register that speaks ZVT.
//!
//! The simulator runs behind an in-process native connection ([`in_process`]): a `Payments`
//! client paired with it over an in-memory link. A `posbridge_zvt::server::ZvtServer` in front
//! of that client speaks ZVT to the register. Faults strike the ZVT connection (a drop cuts the
//! register's link; the payment goes on and the next repeat receipt reports it).

use std::sync::Arc;

use posbridge_wire::{Message, PaymentMethod};
use posbridge_zvt::server::{
    Done, Faults, Ledger, LedgerEvent, LedgerHook, PresentedCard, ServerConfig, ZvtServer,
};

use crate::backend::operator;
pub use crate::backend::{Backend, OPERATOR, in_process, in_process_with, simulated};
use crate::{Fault, FaultAction};

/// The ZVT terminal in front of `backend`, reporting terminal id `tid`, with `faults` applied
/// to the register's connection (drops and silences cut it; a reboot is not simulated in ZVT
/// mode and is refused here).
pub fn server(
    backend: Backend,
    tid: u32,
    faults: Vec<Fault>,
    config: ServerConfig,
) -> Result<ZvtServer<Backend>, String> {
    if faults.iter().any(|f| f.action == FaultAction::Reboot) {
        return Err("reboot faults are not simulated in ZVT mode (use drop or silence)".into());
    }
    let server = ZvtServer::new(
        Arc::new(backend),
        ServerConfig {
            terminal_id: tid,
            // The simulator's test card lies on the reader (a Visa card: ZVT card type 10).
            presented_card: config.presented_card.clone().or_else(|| {
                let card = crate::cards::TestCard::for_method(PaymentMethod::Chip, 0);
                Some(PresentedCard {
                    pan: card.pan,
                    expiry: 2912,
                    card_type: 10,
                    name: card.label.into(),
                })
            }),
            operator: Some(operator()),
            ..config
        },
    );
    if !faults.is_empty() {
        server.set_faults(fault_hook(faults));
    }
    Ok(server)
}

/// The simulator's faults as a ZVT server hook: each strikes `times` times at its point.
pub fn fault_hook(mut faults: Vec<Fault>) -> Faults {
    Box::new(
        move |at| match faults.iter_mut().find(|f| f.at == at && f.times > 0) {
            Some(f) => {
                f.times -= 1;
                true
            }
            None => false,
        },
    )
}

/// The ZVT role's [`Ledger`] kept in the file at `path` (under `--state`): read back — the
/// terminal restarted and still knows its last transaction and its batch's receipt numbers — and
/// a hook that appends every change, synced, before the register hears of it. A torn last record
/// (a crash while writing) is left out.
pub fn ledger_log(path: &std::path::Path) -> std::io::Result<(Ledger, LedgerHook)> {
    use std::io::Write;
    let mut ledger = Ledger::default();
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut rest = data.as_slice();
    while let Some((&kind, after)) = rest.split_first() {
        match kind {
            2 => {
                ledger.apply(&LedgerEvent::BatchClosed);
                rest = after;
            }
            1 if after.len() >= 10 => {
                let trace = u32::from_be_bytes([after[0], after[1], after[2], after[3]]);
                let receipt = u16::from_be_bytes([after[4], after[5]]);
                let n = u32::from_be_bytes([after[6], after[7], after[8], after[9]]) as usize;
                let Some(bytes) = after.get(10..10 + n) else {
                    break;
                };
                let Ok(Message::TransactionResult(result)) = Message::decode(bytes) else {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: a damaged ledger record", path.display()),
                    ));
                };
                ledger.apply(&LedgerEvent::Finished(Done {
                    result,
                    trace,
                    receipt,
                }));
                rest = &after[10 + n..];
            }
            _ => break,
        }
    }
    let mut file = posbridge_crypto::owner_only::open_append(path)?;
    let shown = path.display().to_string();
    let hook: LedgerHook = Box::new(move |event: &LedgerEvent| {
        let record = match event {
            LedgerEvent::BatchClosed => Ok(vec![2]),
            LedgerEvent::Finished(done) => Message::TransactionResult(done.result.clone())
                .to_bytes()
                .map(|bytes| {
                    let mut r = vec![1];
                    r.extend(done.trace.to_be_bytes());
                    r.extend(done.receipt.to_be_bytes());
                    r.extend((bytes.len() as u32).to_be_bytes());
                    r.extend_from_slice(&bytes);
                    r
                })
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())),
        };
        if let Err(e) = record.and_then(|r| {
            file.write_all(&r)?;
            file.sync_data()
        }) {
            eprintln!("posbridge-sim: the ZVT ledger {shown} could not be written: {e}");
        }
    });
    Ok((ledger, hook))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_survives_a_restart_and_a_torn_last_record() {
        let dir = std::env::temp_dir().join(format!("posbridge-zvt-ledger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("zvt-ledger.log");
        let (ledger, mut hook) = ledger_log(&path).unwrap();
        assert!(ledger.last().is_none());
        let done = |trace: u32, minor: u64| {
            let mut result = posbridge_wire::samples::approved_result();
            result.amount.minor = minor;
            result.approved_minor = minor;
            result.tip = None;
            Done {
                result,
                trace,
                receipt: trace as u16,
            }
        };
        hook(&LedgerEvent::Finished(done(1, 500)));
        hook(&LedgerEvent::BatchClosed);
        hook(&LedgerEvent::Finished(done(2, 700)));
        drop(hook);
        // Restarted: the last transaction and the open batch's receipt numbers are back, the
        // closed batch's are not.
        let (ledger, hook) = ledger_log(&path).unwrap();
        let last = ledger.last().expect("the last transaction is known");
        assert_eq!((last.trace, last.receipt), (2, 2));
        assert_eq!(last.result.approved_minor, 700);
        assert!(ledger.original(Some(1)).is_none());
        assert_eq!(ledger.original(Some(2)).map(|o| o.2), Some(700));
        drop(hook);
        // A crash while writing leaves a torn record: it is left out, the rest stands.
        let mut data = std::fs::read(&path).unwrap();
        data.extend([1, 0, 0, 0, 3, 0, 3, 0, 0, 1]);
        std::fs::write(&path, &data).unwrap();
        let (ledger, _) = ledger_log(&path).unwrap();
        assert_eq!(ledger.last().map(|d| d.trace), Some(2));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
