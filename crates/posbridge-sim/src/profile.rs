//! Terminal profiles: what a simulated terminal accepts and how fast it answers.

use std::time::Duration;

use posbridge_wire::{
    AmountLimit, Capabilities, Currency, Feature, FeatureSet, KindSet, MethodSet, OfflineLimit,
    PROTOCOL_VERSIONS, PaymentMethod, TerminalId, TransactionKind, VERSION_1_1,
};

use crate::{CustomerProfile, DeviceProfile};

/// How long each step of a simulated payment takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    /// From the request to a card being presented.
    pub card: Duration,
    /// Reading the card.
    pub read: Duration,
    /// The customer typing the PIN (cards that ask for one).
    pub pin: Duration,
    /// The issuer's answer.
    pub online: Duration,
    /// How long the terminal waits for a card before giving up.
    pub card_timeout: Duration,
}

impl Latency {
    /// Every step at once: for tests and benchmarks.
    pub const INSTANT: Self = Self {
        card: Duration::ZERO,
        read: Duration::ZERO,
        pin: Duration::ZERO,
        online: Duration::ZERO,
        card_timeout: Duration::from_secs(30),
    };
}

impl Default for Latency {
    /// Like a person at a counter: 1.5 s to tap, 0.3 s to read, 3 s for a PIN, 0.8 s online.
    fn default() -> Self {
        Self {
            card: Duration::from_millis(1500),
            read: Duration::from_millis(300),
            pin: Duration::from_secs(3),
            online: Duration::from_millis(800),
            card_timeout: Duration::from_secs(30),
        }
    }
}

/// A simulated terminal: identity, what it accepts, its limits and its pace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalProfile {
    /// The terminal's id.
    pub terminal_id: TerminalId,
    /// The model name reported in the capabilities.
    pub model: String,
    /// The merchant's name on receipts.
    pub merchant_name: String,
    /// The merchant's acquirer id on receipts.
    pub merchant_id: String,
    /// Receipt header lines (address).
    pub receipt_header: Vec<String>,
    /// The transaction kinds it runs.
    pub kinds: KindSet,
    /// The payment methods it accepts, the first being what a customer uses unless the
    /// request asks for another.
    pub methods: Vec<PaymentMethod>,
    /// The currencies it accepts.
    pub currencies: Vec<Currency>,
    /// Amount limits per kind and currency.
    pub limits: Vec<AmountLimit>,
    /// Up to this amount (minor units) an issuer that cannot be reached is not needed: the
    /// terminal approves offline.
    pub floor_limit: u64,
    /// Its pace.
    pub latency: Latency,
    /// Whether results carry both receipts (otherwise clients ask with a receipt request).
    pub receipts_in_result: bool,
    /// The device: battery, power, paper, acquirer outages (protocol 1.1 telemetry).
    pub device: DeviceProfile,
    /// How the customer answers questions on the screen (protocol 1.1).
    pub customer: CustomerProfile,
}

impl Default for TerminalProfile {
    /// A countertop terminal in a euro shop: every kind, chip/contactless/swipe/QR/wallet, EUR,
    /// sales 0.01–5,000.00, floor limit 50.00.
    fn default() -> Self {
        Self {
            terminal_id: TerminalId::from_u128(0x5157_0000_0000_0000_0000_0000_0000_0001),
            model: "posbridge-sim".into(),
            merchant_name: "posbridge demo shop".into(),
            merchant_id: "SIM000000000001".into(),
            receipt_header: vec!["Hauptstrasse 1".into(), "10115 Berlin".into()],
            kinds: KindSet::all(),
            methods: vec![
                PaymentMethod::Contactless,
                PaymentMethod::Chip,
                PaymentMethod::Swipe,
                PaymentMethod::CustomerQr,
                PaymentMethod::Wallet,
            ],
            currencies: vec![Currency::EUR],
            limits: vec![
                AmountLimit {
                    kind: TransactionKind::Sale,
                    currency: Currency::EUR,
                    min: 1,
                    max: 500_000,
                },
                AmountLimit {
                    kind: TransactionKind::Refund,
                    currency: Currency::EUR,
                    min: 1,
                    max: 100_000,
                },
            ],
            floor_limit: 5_000,
            latency: Latency::default(),
            receipts_in_result: true,
            device: DeviceProfile::default(),
            customer: CustomerProfile::default(),
        }
    }
}

/// How many payments the simulator approves offline before it must forward them; their total
/// may reach this many floor limits.
pub(crate) const OFFLINE_COUNT: u32 = 10;

impl TerminalProfile {
    /// The capabilities this profile reports (protocol 1.1 offline limits: up to the floor
    /// limit per payment, ten payments and ten floor limits in total, chip, contactless and
    /// wallet payments).
    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            terminal_id: self.terminal_id,
            model: Some(self.model.clone()),
            firmware: Some(env!("CARGO_PKG_VERSION").into()),
            serial_number: None,
            merchant_name: Some(self.merchant_name.clone()),
            protocol_versions: PROTOCOL_VERSIONS.to_vec(),
            selected_version: VERSION_1_1,
            kinds: self.kinds,
            methods: self.methods.iter().copied().collect::<MethodSet>(),
            currencies: self.currencies.clone(),
            limits: self.limits.clone(),
            max_frame_size: None,
            features: {
                let features = FeatureSet::EMPTY
                    .with(Feature::Tipping)
                    .with(Feature::Cashback)
                    .with(Feature::PartialApproval)
                    .with(Feature::OfflineApproval);
                if self.device.paper.is_some() {
                    features.with(Feature::Printer)
                } else {
                    features
                }
            },
            offline_limits: self
                .currencies
                .iter()
                .map(|&currency| OfflineLimit {
                    currency,
                    per_payment: self.floor_limit,
                    total: self.floor_limit * u64::from(OFFLINE_COUNT),
                    count: OFFLINE_COUNT,
                    methods: MethodSet::EMPTY
                        .with(PaymentMethod::Chip)
                        .with(PaymentMethod::Contactless)
                        .with(PaymentMethod::Wallet),
                })
                .collect(),
        }
    }
}
