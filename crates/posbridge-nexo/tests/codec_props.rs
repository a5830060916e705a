//! Round trips of the nexo codec over generated messages: whatever is encoded decodes equal,
//! sealed or not, and every amount comes back as the same number of minor units in its
//! currency's decimals (no float ever in between).

use posbridge_nexo::amount::{Decimal, currency_digits};
use posbridge_nexo::codec::{self, Direction, Envelope, Message};
use posbridge_nexo::message::*;
use posbridge_nexo::security::SecurityKey;
use proptest::prelude::*;

fn currency() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("EUR"),
        Just("JPY"),
        Just("KWD"),
        Just("USD"),
        Just("CHF")
    ]
}

fn id(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9._-]{{1,{max}}}")).unwrap()
}

fn header(category: MessageCategory, kind: MessageType) -> impl Strategy<Value = MessageHeader> {
    (id(10), id(20), id(30)).prop_map(move |(service, sale, poi)| MessageHeader {
        protocol_version: (kind == MessageType::Request).then(|| "3.0".to_owned()),
        class: category.class(),
        category,
        kind,
        service_id: Some(service),
        device_id: None,
        sale_id: sale,
        poi_id: poi,
    })
}

prop_compose! {
    fn payment_request()(
        h in header(MessageCategory::Payment, MessageType::Request),
        currency in currency(),
        goods in 0u64..=u64::MAX / 4,
        tip in proptest::option::of(0u64..1_000_000),
        cashback in proptest::option::of(0u64..1_000_000),
        txn in id(40),
        kind in prop_oneof![Just(PaymentType::Normal), Just(PaymentType::Refund), Just(PaymentType::FirstReservation)],
    ) -> (Message, u64) {
        let digits = currency_digits(currency).unwrap();
        let total = goods + tip.unwrap_or(0) + cashback.unwrap_or(0);
        let m = Message {
            direction: Direction::Request,
            header: h,
            body: Body::PaymentRequest(PaymentRequest {
                sale_data: SaleData {
                    sale_transaction_id: TransactionIdentification {
                        transaction_id: txn,
                        time_stamp: "2026-12-04T09:30:00.000Z".into(),
                    },
                    sale_reference_id: None,
                    operator_id: None,
                    sale_to_acquirer_data: None,
                },
                payment_transaction: PaymentTransaction {
                    amounts_req: AmountsReq {
                        currency: currency.into(),
                        requested_amount: Decimal::from_minor(total, digits),
                        cash_back_amount: cashback.map(|c| Decimal::from_minor(c, digits)),
                        tip_amount: tip.map(|t| Decimal::from_minor(t, digits)),
                    },
                    original_poi_transaction: None,
                },
                payment_data: Some(PaymentData { payment_type: Some(kind) }),
            }),
        };
        (m, total)
    }
}

prop_compose! {
    fn payment_response()(
        h in header(MessageCategory::Payment, MessageType::Response),
        currency in currency(),
        authorised in 0u64..=u64::MAX / 2,
        result in prop_oneof![Just(ResultCode::Success), Just(ResultCode::Failure), Just(ResultCode::Partial)],
        condition in proptest::option::of(prop_oneof![
            Just(ErrorCondition::Refusal),
            Just(ErrorCondition::Busy),
            Just(ErrorCondition::Cancel),
            Just(ErrorCondition::WrongPin),
            "[A-Z][a-zA-Z]{2,12}".prop_map(ErrorCondition::Other),
        ]),
        text in proptest::option::of(".{0,40}"),
        brand in proptest::option::of("[a-z]{2,10}"),
    ) -> (Message, u64) {
        let digits = currency_digits(currency).unwrap();
        // An unknown condition whose name is a known one decodes as the known one.
        let condition = condition.map(|c| match c {
            ErrorCondition::Other(name) => serde_json::from_value(serde_json::Value::String(name)).unwrap(),
            c => c,
        });
        let mut response = Response { result, error_condition: condition, additional_response: None };
        if let Some(t) = text {
            response.additional_response = Some(format!("message={}", form_escape(&t)));
        }
        let m = Message {
            direction: Direction::Response,
            header: h,
            body: Body::PaymentResponse(PaymentResponse {
                response,
                sale_data: None,
                poi_data: Some(PoiData {
                    poi_transaction_id: TransactionIdentification {
                        transaction_id: "abc.123".into(),
                        time_stamp: "2026-12-04T09:30:01+01:00".into(),
                    },
                    poi_reconciliation_id: Some("7".into()),
                }),
                payment_result: Some(PaymentResult {
                    payment_type: Some(PaymentType::Normal),
                    payment_instrument_data: Some(PaymentInstrumentData {
                        payment_instrument_type: Some("Card".into()),
                        card_data: Some(CardData { payment_brand: brand, masked_pan: None, entry_mode: None }),
                    }),
                    amounts_resp: Some(AmountsResp {
                        currency: currency.into(),
                        authorized_amount: Decimal::from_minor(authorised, digits),
                        cash_back_amount: None,
                        tip_amount: None,
                    }),
                    payment_acquirer_data: None,
                    online_flag: Some(true),
                }),
                payment_receipt: None,
            }),
        };
        (m, authorised)
    }
}

fn amount_of(m: &Message) -> u64 {
    match &m.body {
        Body::PaymentRequest(p) => {
            let a = &p.payment_transaction.amounts_req;
            a.requested_amount
                .to_minor(currency_digits(&a.currency).unwrap())
                .unwrap()
        }
        Body::PaymentResponse(p) => {
            let a = p
                .payment_result
                .as_ref()
                .unwrap()
                .amounts_resp
                .as_ref()
                .unwrap();
            a.authorized_amount
                .to_minor(currency_digits(&a.currency).unwrap())
                .unwrap()
        }
        _ => unreachable!(),
    }
}

fn round_trip(m: &Message, minor: u64) {
    let bytes = codec::encode(&Envelope::Clear(m.clone()));
    let Envelope::Clear(back) = codec::decode(&bytes).unwrap() else {
        panic!("not clear")
    };
    assert_eq!(&back, m);
    assert_eq!(amount_of(&back), minor);
    static KEY: std::sync::OnceLock<SecurityKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| SecurityKey::derive("prop", 1, b"passphrase"));
    let sealed = codec::encode(&Envelope::Sealed(key.seal(m).unwrap()));
    let Envelope::Sealed(s) = codec::decode(&sealed).unwrap() else {
        panic!("not sealed")
    };
    assert_eq!(&key.open(&s).unwrap(), m);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn payment_requests_round_trip((m, minor) in payment_request()) {
        round_trip(&m, minor);
    }

    #[test]
    fn payment_responses_round_trip((m, minor) in payment_response()) {
        round_trip(&m, minor);
    }

    #[test]
    fn form_escaping_round_trips(text in ".{0,60}") {
        prop_assert_eq!(form_unescape(&form_escape(&text)), text);
    }
}
