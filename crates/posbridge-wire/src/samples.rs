//! The values behind `docs/test-vectors.txt`: a hello, a sale request, its approved and
//! declined results, and a heartbeat. The vector tests check these against the file byte for
//! byte; benchmarks, other crates' tests and examples use them as realistic messages.

use alloc::vec;

use crate::{
    Amount, ClientId, Currency, DeclineReason, Heartbeat, Hello, IdempotencyKey, MaskedPan,
    Metadata, Outcome, PaymentMethod, RequestId, TerminalId, Timestamp, TransactionCommand,
    TransactionId, TransactionKind, TransactionRequest, TransactionResult,
};

/// Request id of the sample sale (16 × `01`).
pub const REQUEST_ID: RequestId = RequestId([0x01; 16]);
/// Idempotency key of the sample sale (16 × `02`).
pub const IDEMPOTENCY_KEY: IdempotencyKey = IdempotencyKey([0x02; 16]);
/// Transaction id the terminal gave the sample sale (16 × `03`).
pub const TRANSACTION_ID: TransactionId = TransactionId([0x03; 16]);
/// The sample terminal (16 × `04`).
pub const TERMINAL_ID: TerminalId = TerminalId([0x04; 16]);

/// `hello`: "Till 1", app "posbridge 0.1.0", protocol version 1, maximum frame 4096.
pub fn hello() -> Hello {
    Hello {
        client_id: ClientId::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff),
        client_name: Some("Till 1".into()),
        app_version: Some("posbridge 0.1.0".into()),
        protocol_versions: vec![1],
        max_frame_size: Some(4096),
    }
}

/// `sale-request`: 12.50 EUR with a 1.00 tip, order reference `ORDER-1001`, metadata
/// `table=12`.
pub fn sale_request() -> TransactionRequest {
    let mut metadata = Metadata::new();
    metadata.insert("table", "12").expect("within the limits");
    TransactionRequest {
        order_ref: Some("ORDER-1001".into()),
        metadata,
        ..TransactionRequest::new(
            REQUEST_ID,
            IDEMPOTENCY_KEY,
            TransactionCommand::Sale {
                amount: Amount::new(1250, Currency::EUR),
                tip: Some(100),
                cashback: None,
            },
        )
    }
}

/// `approved-result`: the sale approved, contactless VISA `411111******1111`, authorisation
/// code `A1B2C3`, at 2025-11-24T16:00:00Z, unsigned.
pub fn approved_result() -> TransactionResult {
    TransactionResult {
        request_id: REQUEST_ID,
        idempotency_key: IDEMPOTENCY_KEY,
        transaction_id: TRANSACTION_ID,
        terminal_id: TERMINAL_ID,
        kind: TransactionKind::Sale,
        outcome: Outcome::Approved,
        amount: Amount::new(1250, Currency::EUR),
        approved_minor: 1250,
        tip: Some(100),
        cashback: None,
        method: Some(PaymentMethod::Contactless),
        pan: Some(MaskedPan::parse("411111******1111").expect("a masked PAN")),
        card_scheme: Some("VISA".into()),
        auth_code: Some("A1B2C3".into()),
        reference: None,
        time: Timestamp(1_764_000_000_000),
        offline: false,
        balance: None,
        receipts: vec![],
        signature: None,
        emv: None,
    }
}

/// `declined-result`: the same sale declined for insufficient funds (reason 51).
pub fn declined_result() -> TransactionResult {
    TransactionResult {
        outcome: Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS),
        approved_minor: 0,
        tip: None,
        auth_code: None,
        ..approved_result()
    }
}

/// `heartbeat`: nonce 42.
pub fn heartbeat() -> Heartbeat {
    Heartbeat { nonce: 42 }
}

/// `telemetry-report` (protocol 1.1): a push after the battery fell to 14 % and the acquirer
/// went away — on battery, not charging, firmware "2.4.1", app "pay 7.0", paper low, three
/// payments stored offline.
pub fn telemetry_report() -> crate::TelemetryReport {
    crate::TelemetryReport {
        request_id: None,
        changes: crate::TelemetryChangeSet::EMPTY
            .with(crate::TelemetryChange::BatteryLow)
            .with(crate::TelemetryChange::Offline),
        telemetry: crate::Telemetry {
            battery_percent: Some(14),
            charging: false,
            power: Some(crate::PowerSource::Battery),
            firmware: Some("2.4.1".into()),
            app_version: Some("pay 7.0".into()),
            paper: Some(crate::PaperState::Low),
            acquirer: crate::AcquirerLink::Offline,
            stored_offline: 3,
        },
    }
}

/// `emv-result` (protocol 1.1): the approved result with the EMV data of a contactless Visa
/// payment — AID `A0000000031010`, label "VISA CREDIT", TVR `0000008000`, TSI `0000`, ARC "00",
/// no cardholder verification, a transaction certificate `1122334455667788`.
pub fn emv_result() -> TransactionResult {
    TransactionResult {
        emv: Some(crate::EmvData {
            aid: "A0000000031010".into(),
            label: Some("VISA CREDIT".into()),
            tvr: [0, 0, 0, 0x80, 0],
            tsi: [0, 0],
            arc: Some("00".into()),
            cvm: crate::CardholderVerification::NoCvm,
            cryptogram_type: crate::CryptogramType::Tc,
            cryptogram: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
        }),
        ..approved_result()
    }
}

/// `update-offer` (protocol 1.1): an offer of version "2.5.0", 1,048,576 bytes, whose SHA-256 is
/// 32 × `ab`, unsigned (the vector's signature is made by the tests with the RFC 8032 test key).
pub fn update_offer() -> crate::UpdateOffer {
    crate::UpdateOffer {
        request_id: RequestId([0x05; 16]),
        manifest: crate::UpdateManifest {
            version: "2.5.0".into(),
            size: 1 << 20,
            digest: [0xAB; 32],
            signature: [0; 64],
        },
    }
}

/// `offline-outcome` (protocol 1.1): the final outcome of the sample sale, had it been approved
/// offline — declined by the issuer after the fact (reason 51) at 2025-11-24T18:00:00Z, pushed
/// (no request id), unsigned (the vector's signature is made by the tests with the RFC 8032 test
/// key).
pub fn offline_outcome() -> crate::OfflineOutcome {
    crate::OfflineOutcome {
        request_id: None,
        idempotency_key: IDEMPOTENCY_KEY,
        transaction_id: TRANSACTION_ID,
        terminal_id: TERMINAL_ID,
        state: crate::OfflineState::Declined(DeclineReason::INSUFFICIENT_FUNDS),
        time: Timestamp(1_764_007_200_000),
        signature: None,
    }
}
