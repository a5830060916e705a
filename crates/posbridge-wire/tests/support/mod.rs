//! proptest strategies for every message type, shared by the property tests.
#![allow(dead_code, unreachable_pub)]

use posbridge_wire::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

pub fn id16() -> impl Strategy<Value = [u8; 16]> {
    any::<[u8; 16]>()
}

pub fn text(max: usize) -> impl Strategy<Value = String> {
    // Mixed ASCII and multi-byte text, trimmed to `max` bytes on a char boundary.
    "[a-zA-Z0-9 äöüé€中文]{0,40}".prop_map(move |s: String| {
        let mut end = s.len().min(max);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    })
}

pub fn currency() -> impl Strategy<Value = Currency> {
    (1u16..=999).prop_map(|c| Currency::new(c).unwrap())
}

pub fn amount() -> impl Strategy<Value = Amount> {
    (any::<u64>(), currency()).prop_map(|(m, c)| Amount::new(m, c))
}

pub fn kind() -> impl Strategy<Value = TransactionKind> {
    proptest::sample::select(TransactionKind::ALL)
}

pub fn method() -> impl Strategy<Value = PaymentMethod> {
    proptest::sample::select(PaymentMethod::ALL)
}

pub fn pan() -> impl Strategy<Value = MaskedPan> {
    (13usize..=19, any::<u64>(), any::<u64>()).prop_map(|(len, a, b)| {
        let digits: String = format!("{a:020}{b:020}").chars().take(len).collect();
        MaskedPan::mask(&digits).unwrap()
    })
}

pub fn txn_ref() -> impl Strategy<Value = TransactionRef> {
    prop_oneof![
        id16().prop_map(|b| TransactionRef::Id(TransactionId(b))),
        id16().prop_map(|b| TransactionRef::Key(IdempotencyKey(b))),
    ]
}

pub fn metadata() -> impl Strategy<Value = Metadata> {
    btree_map("[a-z_]{1,32}", text(256), 0..6).prop_map(|m| {
        let mut md = Metadata::new();
        for (k, v) in m {
            md.insert(k, v).unwrap();
        }
        md
    })
}

pub fn operator() -> impl Strategy<Value = OperatorAuth> {
    (
        text(64),
        prop_oneof![
            "[0-9]{4,12}".prop_map(|p| Credential::Pin(OperatorSecret::new(p).unwrap())),
            "[0-9]{6,8}".prop_map(|p| Credential::Totp(OperatorSecret::new(p).unwrap())),
        ],
    )
        .prop_map(|(operator_id, credential)| OperatorAuth {
            operator_id,
            credential,
        })
}

pub fn command() -> impl Strategy<Value = TransactionCommand> {
    use TransactionCommand as C;
    let tip = || option::of(any::<u64>());
    prop_oneof![
        (amount(), tip(), tip()).prop_map(|(amount, tip, cashback)| C::Sale {
            amount,
            tip,
            cashback
        }),
        (amount(), option::of(txn_ref()))
            .prop_map(|(amount, original)| C::Refund { amount, original }),
        txn_ref().prop_map(|original| C::Void { original }),
        amount().prop_map(|amount| C::PreAuth { amount }),
        (txn_ref(), amount())
            .prop_map(|(original, amount)| C::IncrementalAuth { original, amount }),
        (txn_ref(), amount(), tip()).prop_map(|(original, amount, tip)| C::Capture {
            original,
            amount,
            tip
        }),
        txn_ref().prop_map(|original| C::PreAuthCancel { original }),
        option::of(currency()).prop_map(|currency| C::BalanceInquiry { currency }),
    ]
}

pub fn transaction_request() -> impl Strategy<Value = TransactionRequest> {
    (
        id16(),
        id16(),
        command(),
        option::of(any::<u32>().prop_map(MethodSet)),
        option::of(text(64)),
        metadata(),
        option::of(operator()),
        option::of(any::<u32>()),
    )
        .prop_map(
            |(r, k, command, methods, order_ref, metadata, operator, timeout_ms)| {
                TransactionRequest {
                    request_id: RequestId(r),
                    idempotency_key: IdempotencyKey(k),
                    command,
                    methods,
                    order_ref,
                    metadata,
                    operator,
                    timeout_ms,
                }
            },
        )
}

pub fn receipt() -> impl Strategy<Value = Receipt> {
    (
        (
            prop_oneof![Just(ReceiptCopy::Merchant), Just(ReceiptCopy::Customer)],
            vec(text(64), 0..3),
            option::of(text(64)),
            option::of(text(32)),
            option::of(text(32)),
            kind(),
            any::<u64>(),
            currency(),
            option::of(any::<u64>()),
            option::of(any::<u64>()),
            any::<u64>(),
        ),
        (
            option::of(method()),
            option::of(text(32)),
            option::of(pan()),
            option::of("[0-9A-F]{10,32}"),
            option::of(text(32)),
            option::of(text(32)),
            option::of(text(32)),
            option::of(any::<u32>()),
            option::of(text(64)),
            any::<bool>(),
            vec((text(64), text(256)), 0..3),
            vec(text(256), 0..3),
        ),
    )
        .prop_map(|(a, b)| Receipt {
            copy: a.0,
            header: a.1,
            merchant_name: a.2,
            merchant_id: a.3,
            terminal_label: a.4,
            kind: a.5,
            amount: a.6,
            currency: a.7,
            tip: a.8,
            cashback: a.9,
            time: Timestamp(a.10),
            method: b.0,
            card_scheme: b.1,
            pan: b.2,
            aid: b.3,
            application_label: b.4,
            auth_code: b.5,
            reference: b.6,
            trace: b.7,
            result_text: b.8,
            signature_line: b.9,
            lines: b
                .10
                .into_iter()
                .map(|(label, value)| ReceiptLine { label, value })
                .collect(),
            footer: b.11,
        })
}

pub fn outcome_and_approved(amount: u64) -> BoxedStrategy<(Outcome, u64)> {
    let mut options = vec![
        Just((Outcome::Approved, amount)).boxed(),
        any::<u16>()
            .prop_map(|c| (Outcome::Declined(DeclineReason(c)), 0))
            .boxed(),
        Just((Outcome::Cancelled, 0)).boxed(),
        any::<u16>()
            .prop_map(|c| (Outcome::Failed(ErrorCode(c)), 0))
            .boxed(),
    ];
    if amount > 1 {
        options.push(
            (1..amount)
                .prop_map(|a| (Outcome::PartiallyApproved, a))
                .boxed(),
        );
    }
    proptest::strategy::Union::new(options).boxed()
}

pub fn transaction_result() -> impl Strategy<Value = TransactionResult> {
    amount()
        .prop_flat_map(|amount| (Just(amount), outcome_and_approved(amount.minor)))
        .prop_flat_map(|(amount, (outcome, approved))| {
            (
                (
                    Just(amount),
                    Just(outcome),
                    Just(approved),
                    id16(),
                    id16(),
                    id16(),
                    id16(),
                    kind(),
                    option::of(any::<u64>()),
                    option::of(any::<u64>()),
                ),
                (
                    option::of(method()),
                    option::of(pan()),
                    option::of(text(32)),
                    option::of("[A-Z0-9]{6}"),
                    option::of("[0-9]{12}"),
                    any::<u64>(),
                    any::<bool>(),
                    option::of(any::<u64>()),
                    vec(receipt(), 0..2),
                    option::of(any::<[u8; 32]>().prop_map(|h| {
                        let mut s = [0u8; 64];
                        s[..32].copy_from_slice(&h);
                        s[32..].copy_from_slice(&h);
                        s
                    })),
                ),
            )
        })
        .prop_flat_map(|(a, b)| (Just(a), Just(b), option::of(emv())))
        .prop_map(|(a, b, emv)| TransactionResult {
            request_id: RequestId(a.3),
            idempotency_key: IdempotencyKey(a.4),
            transaction_id: TransactionId(a.5),
            terminal_id: TerminalId(a.6),
            kind: a.7,
            outcome: a.1,
            amount: a.0,
            approved_minor: a.2,
            tip: a.8,
            cashback: a.9,
            method: b.0,
            pan: b.1,
            card_scheme: b.2,
            auth_code: b.3,
            reference: b.4,
            time: Timestamp(b.5),
            offline: b.6,
            balance: b.7,
            receipts: b.8,
            signature: b.9,
            emv,
        })
}

/// EMV data with every field in its range.
pub fn emv() -> impl Strategy<Value = EmvData> {
    (
        "([0-9A-F]{2}){5,16}",
        option::of(text(32)),
        any::<[u8; 5]>(),
        any::<[u8; 2]>(),
        option::of("[0-9A-Z]{2}"),
        proptest::sample::select(CardholderVerification::ALL),
        proptest::sample::select(CryptogramType::ALL),
        any::<[u8; 8]>(),
    )
        .prop_map(|e| EmvData {
            aid: e.0,
            label: e.1,
            tvr: e.2,
            tsi: e.3,
            arc: e.4,
            cvm: e.5,
            cryptogram_type: e.6,
            cryptogram: e.7,
        })
}

pub fn limit() -> impl Strategy<Value = AmountLimit> {
    (kind(), currency(), any::<u64>(), any::<u64>()).prop_map(|(kind, currency, a, b)| {
        AmountLimit {
            kind,
            currency,
            min: a.min(b),
            max: a.max(b),
        }
    })
}

pub fn config() -> impl Strategy<Value = TerminalConfig> {
    (
        option::of(text(64)),
        option::of(any::<u32>().prop_map(KindSet)),
        option::of(any::<u32>().prop_map(MethodSet)),
        option::of(vec(currency(), 0..5)),
        option::of(vec(limit(), 0..4)),
        option::of(any::<bool>()),
        option::of(vec(1u8..=100, 0..=8)),
        option::of(vec(text(64), 0..=8)),
        option::of(any::<u64>().prop_map(Timestamp)),
    )
        .prop_map(|t| TerminalConfig {
            merchant_name: t.0,
            kinds: t.1,
            methods: t.2,
            currencies: t.3,
            limits: t.4,
            tipping: t.5,
            tip_percentages: t.6,
            receipt_header: t.7,
            clock: t.8,
        })
}

fn rid() -> impl Strategy<Value = RequestId> {
    id16().prop_map(RequestId)
}

fn ikey() -> impl Strategy<Value = IdempotencyKey> {
    id16().prop_map(IdempotencyKey)
}

fn versions() -> impl Strategy<Value = Vec<u16>> {
    vec(any::<u16>(), 1..5)
}

fn frame_size() -> impl Strategy<Value = u32> {
    (MIN_FRAME_SIZE as u32)..=(HARD_MAX_FRAME_SIZE as u32)
}

pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            id16(),
            option::of(text(64)),
            option::of(text(64)),
            versions(),
            option::of(frame_size())
        )
            .prop_map(|t| Message::Hello(Hello {
                client_id: ClientId(t.0),
                client_name: t.1,
                app_version: t.2,
                protocol_versions: t.3,
                max_frame_size: t.4,
            })),
        (
            (
                id16(),
                option::of(text(64)),
                option::of(text(64)),
                option::of(text(64)),
                option::of(text(64))
            ),
            (
                versions(),
                any::<u16>(),
                any::<u32>(),
                any::<u32>(),
                vec(currency(), 0..6)
            ),
            (
                vec(limit(), 0..4),
                option::of(frame_size()),
                any::<u32>(),
                vec(offline_limit(), 0..3)
            ),
        )
            .prop_map(|(a, b, c)| Message::Capabilities(Capabilities {
                terminal_id: TerminalId(a.0),
                model: a.1,
                firmware: a.2,
                serial_number: a.3,
                merchant_name: a.4,
                protocol_versions: b.0,
                selected_version: b.1,
                kinds: KindSet(b.2),
                methods: MethodSet(b.3),
                currencies: b.4,
                limits: c.0,
                max_frame_size: c.1,
                features: FeatureSet(c.2),
                offline_limits: c.3,
            })),
        (any::<u8>(), vec(any::<u8>(), 0..300))
            .prop_map(|(step, body)| Message::Pairing(Pairing { step, body })),
        (any::<u8>(), vec(any::<u8>(), 0..300))
            .prop_map(|(step, body)| Message::Handshake(Handshake { step, body })),
        any::<u64>().prop_map(|nonce| Message::Heartbeat(Heartbeat { nonce })),
        (
            any::<u64>(),
            prop_oneof![
                Just(TerminalState::Idle),
                Just(TerminalState::Busy),
                Just(TerminalState::Maintenance)
            ],
            option::of(any::<u64>().prop_map(Timestamp))
        )
            .prop_map(|(nonce, state, time)| Message::HeartbeatAck(HeartbeatAck {
                nonce,
                state,
                time
            })),
        (
            option::of(rid()),
            any::<u16>(),
            option::of(text(256)),
            option::of(any::<u32>())
        )
            .prop_map(|t| {
                Message::Error(ErrorMessage {
                    request_id: t.0,
                    code: ErrorCode(t.1),
                    detail: t.2,
                    retry_after_ms: t.3,
                })
            }),
        transaction_request().prop_map(Message::Transaction),
        (rid(), ikey()).prop_map(|(request_id, idempotency_key)| Message::StatusQuery(
            StatusQuery {
                request_id,
                idempotency_key
            }
        )),
        rid().prop_map(|request_id| Message::LastTransaction(LastTransactionQuery { request_id })),
        (rid(), rid())
            .prop_map(|(request_id, target)| Message::Cancel(Cancel { request_id, target })),
        (rid(), ikey(), option::of(operator())).prop_map(
            |(request_id, idempotency_key, operator)| {
                Message::Settlement(SettlementRequest {
                    request_id,
                    idempotency_key,
                    operator,
                })
            }
        ),
        (
            rid(),
            txn_ref(),
            prop_oneof![Just(ReceiptCopy::Merchant), Just(ReceiptCopy::Customer)]
        )
            .prop_map(|(request_id, target, copy)| Message::ReceiptRequest(
                ReceiptRequest {
                    request_id,
                    target,
                    copy
                }
            )),
        rid().prop_map(|request_id| Message::ConfigRead(ConfigRead { request_id })),
        (rid(), config(), option::of(operator())).prop_map(|(request_id, config, operator)| {
            Message::ConfigWrite(ConfigWrite {
                request_id,
                config,
                operator,
            })
        }),
        (
            rid(),
            any::<u8>(),
            option::of(method()),
            option::of(text(256))
        )
            .prop_map(|t| {
                Message::Progress(Progress {
                    request_id: t.0,
                    stage: ProgressStage::from_code(t.1),
                    method: t.2,
                    message: t.3,
                })
            }),
        transaction_result().prop_map(Message::TransactionResult),
        (
            rid(),
            ikey(),
            prop_oneof![
                Just(TransactionStatus::NotFound),
                option::of(any::<u8>().prop_map(ProgressStage::from_code))
                    .prop_map(|stage| TransactionStatus::InProgress { stage }),
                transaction_result().prop_map(|r| TransactionStatus::Done(Box::new(r))),
            ]
        )
            .prop_map(
                |(request_id, idempotency_key, status)| Message::StatusResponse(StatusResponse {
                    request_id,
                    idempotency_key,
                    status
                })
            ),
        (
            rid(),
            rid(),
            prop_oneof![
                Just(CancelState::Accepted),
                Just(CancelState::TooLate),
                Just(CancelState::NotFound)
            ]
        )
            .prop_map(|(request_id, target, state)| Message::CancelResponse(
                CancelResponse {
                    request_id,
                    target,
                    state
                }
            )),
        (
            (
                rid(),
                ikey(),
                id16(),
                any::<u32>(),
                option::of(any::<u16>())
            ),
            (
                option::of(any::<u64>()),
                any::<u64>(),
                vec((kind(), currency(), any::<u32>(), any::<u64>()), 0..6),
                option::of(receipt()),
                option::of(any::<[u8; 32]>())
            ),
        )
            .prop_map(|(a, b)| Message::SettlementResult(SettlementResult {
                request_id: a.0,
                idempotency_key: a.1,
                terminal_id: TerminalId(a.2),
                batch_number: a.3,
                status: a.4.map_or(Ok(()), |c| Err(ErrorCode(c))),
                opened: b.0.map(Timestamp),
                closed: Timestamp(b.1),
                totals: b
                    .2
                    .into_iter()
                    .map(|(kind, currency, count, amount)| Totals {
                        kind,
                        currency,
                        count,
                        amount
                    })
                    .collect(),
                receipt: b.3,
                signature: b.4.map(|h| {
                    let mut s = [7u8; 64];
                    s[..32].copy_from_slice(&h);
                    s
                }),
            })),
        (rid(), receipt()).prop_map(|(request_id, receipt)| Message::ReceiptResponse(
            ReceiptResponse {
                request_id,
                receipt
            }
        )),
        (rid(), config()).prop_map(|(request_id, config)| Message::ConfigResponse(
            ConfigResponse { request_id, config }
        )),
        (rid(), option::of(transaction_result())).prop_map(|(request_id, result)| {
            Message::LastTransactionResponse(LastTransactionResponse {
                request_id,
                result: result.map(Box::new),
            })
        }),
        rid().prop_map(|request_id| Message::TelemetryQuery(TelemetryQuery { request_id })),
        (
            rid(),
            vec(cart_line(), 0..4),
            currency(),
            any::<u64>(),
            option::of(text(64))
        )
            .prop_map(|(request_id, lines, currency, total, message)| {
                Message::CustomerDisplay(CustomerDisplay {
                    request_id,
                    lines,
                    currency,
                    total,
                    message,
                })
            }),
        (
            rid(),
            text(64),
            customer_question(),
            1u32..=MAX_INPUT_TIMEOUT_MS
        )
            .prop_map(|(request_id, prompt, question, timeout_ms)| {
                Message::CustomerInput(CustomerInput {
                    request_id,
                    prompt,
                    question,
                    timeout_ms,
                })
            }),
        (rid(), customer_reply()).prop_map(|(request_id, reply)| {
            Message::CustomerResponse(CustomerResponse { request_id, reply })
        }),
        (rid(), text(64), MIN_LEASE_MS..=MAX_LEASE_MS, any::<bool>()).prop_map(
            |(request_id, holder, duration_ms, wait)| Message::LeaseRequest(LeaseRequest {
                request_id,
                holder,
                duration_ms,
                wait
            })
        ),
        rid().prop_map(|request_id| Message::LeaseRelease(LeaseRelease { request_id })),
        (option::of(rid()), lease_state()).prop_map(|(request_id, state)| {
            Message::LeaseResponse(LeaseResponse { request_id, state })
        }),
        (
            rid(),
            text(64),
            1u32..=MAX_UPDATE_SIZE,
            any::<[u8; 32]>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(request_id, version, size, digest, half)| {
                let mut signature = [0u8; 64];
                signature[..32].copy_from_slice(&half);
                Message::UpdateOffer(UpdateOffer {
                    request_id,
                    manifest: UpdateManifest {
                        version,
                        size,
                        digest,
                        signature,
                    },
                })
            }),
        (
            rid(),
            any::<[u8; 32]>(),
            any::<u32>(),
            vec(any::<u8>(), 1..64)
        )
            .prop_map(|(request_id, digest, offset, data)| Message::UpdateChunk(
                UpdateChunk {
                    request_id,
                    digest,
                    offset,
                    data
                }
            )),
        (rid(), update_state()).prop_map(|(request_id, state)| {
            Message::UpdateStatus(UpdateStatus { request_id, state })
        }),
        (rid(), ikey()).prop_map(|(request_id, idempotency_key)| {
            Message::OfflineOutcomeQuery(OfflineOutcomeQuery {
                request_id,
                idempotency_key,
            })
        }),
        (
            option::of(rid()),
            ikey(),
            id16(),
            id16(),
            prop_oneof![
                Just(OfflineState::Pending),
                Just(OfflineState::Confirmed),
                any::<u16>().prop_map(|r| OfflineState::Declined(DeclineReason(r))),
            ],
            any::<u64>(),
            option::of(any::<[u8; 32]>().prop_map(|h| {
                let mut s = [0u8; 64];
                s[..32].copy_from_slice(&h);
                s
            }))
        )
            .prop_map(|t| Message::OfflineOutcome(OfflineOutcome {
                request_id: t.0,
                idempotency_key: t.1,
                transaction_id: TransactionId(t.2),
                terminal_id: TerminalId(t.3),
                state: t.4,
                time: Timestamp(t.5),
                signature: t.6,
            })),
        (option::of(rid()), any::<u32>(), telemetry()).prop_map(
            |(request_id, changes, telemetry)| {
                Message::TelemetryReport(TelemetryReport {
                    request_id,
                    changes: TelemetryChangeSet(changes),
                    telemetry,
                })
            }
        ),
    ]
}

/// Telemetry with every field in its range, present or not.
pub fn telemetry() -> impl Strategy<Value = Telemetry> {
    (
        option::of(0u8..=100),
        any::<bool>(),
        option::of(proptest::sample::select(PowerSource::ALL)),
        option::of(text(64)),
        option::of(text(64)),
        option::of(proptest::sample::select(PaperState::ALL)),
        proptest::sample::select(AcquirerLink::ALL),
        any::<u32>(),
    )
        .prop_map(|t| Telemetry {
            battery_percent: t.0,
            charging: t.1,
            power: t.2,
            firmware: t.3,
            app_version: t.4,
            paper: t.5,
            acquirer: t.6,
            stored_offline: t.7,
        })
}

/// Frames of every type with random headers and payloads up to `max_payload` bytes.
pub fn frame(max_payload: usize) -> impl Strategy<Value = Frame> {
    (
        proptest::sample::select(FrameType::ALL),
        any::<bool>(),
        any::<u32>(),
        vec(any::<u8>(), 0..=max_payload),
    )
        .prop_map(|(t, enc, seq, payload)| Frame {
            frame_type: t,
            flags: if enc {
                FrameFlags::ENCRYPTED
            } else {
                FrameFlags::NONE
            },
            seq,
            payload: payload.into(),
        })
}

pub fn cart_line() -> impl Strategy<Value = CartLine> {
    (text(64), option::of(any::<u32>()), any::<u64>()).prop_map(|(text, quantity, amount)| {
        CartLine {
            text,
            quantity,
            amount,
        }
    })
}

pub fn customer_question() -> impl Strategy<Value = CustomerQuestion> {
    prop_oneof![
        (
            any::<u64>(),
            currency(),
            vec(1u16..=100, 0..=6),
            any::<bool>()
        )
            .prop_map(|(base, currency, presets, custom)| CustomerQuestion::Tip {
                base,
                currency,
                presets,
                custom
            }),
        Just(CustomerQuestion::YesNo),
        (any::<u64>(), any::<u64>()).prop_map(|(a, b)| CustomerQuestion::Number {
            min: a.min(b),
            max: a.max(b)
        }),
        Just(CustomerQuestion::Signature),
    ]
}

pub fn customer_reply() -> impl Strategy<Value = CustomerReply> {
    prop_oneof![
        Just(CustomerReply::Shown),
        any::<u64>().prop_map(CustomerReply::Tip),
        any::<bool>().prop_map(CustomerReply::Confirmed),
        any::<u64>().prop_map(CustomerReply::Number),
        vec(any::<u8>(), 1..64).prop_map(CustomerReply::Signature),
        Just(CustomerReply::TimedOut),
        Just(CustomerReply::Cancelled),
    ]
}

pub fn lease_state() -> impl Strategy<Value = LeaseState> {
    prop_oneof![
        any::<u32>().prop_map(|expires_in_ms| LeaseState::Granted { expires_in_ms }),
        (1u32.., text(64)).prop_map(|(position, holder)| LeaseState::Queued { position, holder }),
        text(64).prop_map(|holder| LeaseState::Busy { holder }),
        Just(LeaseState::Released),
        Just(LeaseState::Expired),
    ]
}

pub fn update_state() -> impl Strategy<Value = UpdateState> {
    prop_oneof![
        any::<u32>().prop_map(|offset| UpdateState::Ready { offset }),
        text(64).prop_map(|version| UpdateState::Installed { version }),
        proptest::sample::select(vec![
            UpdateRefusal::Untrusted,
            UpdateRefusal::BatteryLow,
            UpdateRefusal::PaymentRunning,
            UpdateRefusal::AlreadyInstalled,
            UpdateRefusal::NotOffered,
            UpdateRefusal::DigestMismatch,
            UpdateRefusal::InstallFailed,
            UpdateRefusal::Older,
        ])
        .prop_map(UpdateState::Refused),
    ]
}

pub fn offline_limit() -> impl Strategy<Value = OfflineLimit> {
    (
        currency(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(currency, per_payment, total, count, methods)| OfflineLimit {
                currency,
                per_payment,
                total,
                count,
                methods: MethodSet(methods),
            },
        )
}
