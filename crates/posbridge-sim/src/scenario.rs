//! Scenario files: a terminal profile, the cards presented and the faults injected, in TOML.

use std::time::Duration;

use posbridge_wire::{
    AmountLimit, Currency, DeclineReason, PaymentMethod, PowerSource, TransactionKind,
};
use serde::Deserialize;

use crate::{CardBehaviour, Fault, Latency, TerminalProfile, TipChoice};

/// A scenario: what the terminal is like, which cards the customers present and what goes
/// wrong. Every part is optional; what is left out keeps the default profile's value.
///
/// ```toml
/// cards = ["approve", "decline:51", "wrong-pin"]   # presented in order, then by amount
/// faults = ["drop:before-result", "reboot:after-card-read"]
///
/// [terminal]
/// merchant_name = "Café am Markt"
/// currencies = ["EUR", "CHF"]
/// methods = ["contactless", "chip"]
/// floor_limit = 2500          # minor units
/// max_sale = 100000           # minor units, per currency
///
/// [latency]                   # milliseconds
/// card = 600
/// online = 400
///
/// [device]                    # protocol 1.1 telemetry
/// battery = 40                # percent at start; "none" for a mains-only terminal
/// battery_drain = 2           # percent per money command, on battery power
/// power = "battery"           # battery, mains, usb or dock
/// paper = 30                  # receipts' worth of paper; "none" for no printer
/// paper_low = 5               # paper is low from this many receipts left
/// offline_after = 3           # the acquirer goes away after this many money commands
/// offline_for = 4             # and comes back after this many more
/// update_key = "d75a98…"      # the publisher whose signed updates it installs (64 hex digits)
/// update_fails = true         # installing an update fails: the old version stays
///
/// [customer]                  # protocol 1.1 questions on the terminal's screen
/// delay_ms = 800              # how long the customer takes
/// tip = "preset:2"            # none, preset:N (0 = the first), custom:AMOUNT (minor units)
/// confirm = false             # the answer to yes/no questions
/// number = 214                # the number typed
/// signs = true                # signs when asked
/// absent = false              # walked away: every question times out
///
/// [link]
/// corrupt = 0.001             # share of bytes with a flipped bit, both directions
/// delay_ms = 50               # every write held back this long (a slow answer)
/// seed = 7
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scenario {
    /// The terminal.
    pub profile: TerminalProfile,
    /// Cards presented for the next payments, in order (then the amount decides again).
    pub cards: Vec<CardBehaviour>,
    /// Faults at named steps.
    pub faults: Vec<Fault>,
    /// Damage to the link's bytes.
    pub link: LinkFaults,
}

/// Byte-level faults on every connection.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability that a byte has a bit flipped, in both directions.
    pub corrupt: f64,
    /// How long every write of the terminal is held back.
    pub delay: Duration,
    /// Seed of the damage (the same seed damages the same bytes).
    pub seed: u64,
}

/// A scenario file that cannot be used: which part, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "scenario: {}", self.0)
    }
}

impl std::error::Error for ScenarioError {}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    terminal: TerminalSection,
    #[serde(default)]
    latency: LatencySection,
    #[serde(default)]
    cards: Vec<String>,
    #[serde(default)]
    faults: Vec<String>,
    #[serde(default)]
    link: LinkSection,
    #[serde(default)]
    device: DeviceSection,
    #[serde(default)]
    customer: CustomerSection,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CustomerSection {
    delay_ms: Option<u64>,
    tip: Option<String>,
    confirm: Option<bool>,
    number: Option<u64>,
    signs: Option<bool>,
    absent: Option<bool>,
}

/// A tip choice by name: `none`, `preset:N` (0 = the first preset), `custom:AMOUNT` (minor
/// units).
pub fn parse_tip(s: &str) -> Result<TipChoice, ScenarioError> {
    let bad = || {
        ScenarioError(format!(
            "customer.tip {s:?}: give none, preset:N or custom:AMOUNT"
        ))
    };
    Ok(match s.split_once(':') {
        None if s == "none" => TipChoice::None,
        Some(("preset", n)) => TipChoice::Preset(n.parse().map_err(|_| bad())?),
        Some(("custom", n)) => TipChoice::Custom(n.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeviceSection {
    battery: Option<toml::Value>,
    battery_drain: Option<u8>,
    power: Option<String>,
    paper: Option<toml::Value>,
    paper_low: Option<u32>,
    offline_after: Option<u32>,
    offline_for: Option<u32>,
    update_key: Option<String>,
    update_fails: Option<bool>,
}

/// A count or "none".
fn count_or_none(key: &str, v: &toml::Value, max: i64) -> Result<Option<i64>, ScenarioError> {
    match v {
        toml::Value::String(s) if s == "none" => Ok(None),
        toml::Value::Integer(n) if (0..=max).contains(n) => Ok(Some(*n)),
        _ => Err(ScenarioError(format!(
            "device.{key} {v}: give a number from 0 to {max}, or \"none\""
        ))),
    }
}

/// A power source by name: `battery`, `mains`, `usb`, `dock`.
pub fn parse_power(s: &str) -> Result<PowerSource, ScenarioError> {
    Ok(match s {
        "battery" => PowerSource::Battery,
        "mains" => PowerSource::Mains,
        "usb" => PowerSource::Usb,
        "dock" => PowerSource::Dock,
        _ => {
            return Err(ScenarioError(format!(
                "device.power {s:?}: give battery, mains, usb or dock"
            )));
        }
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TerminalSection {
    merchant_name: Option<String>,
    merchant_id: Option<String>,
    model: Option<String>,
    receipt_header: Option<Vec<String>>,
    currencies: Option<Vec<String>>,
    methods: Option<Vec<String>>,
    floor_limit: Option<u64>,
    max_sale: Option<u64>,
    max_refund: Option<u64>,
    receipts_in_result: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LatencySection {
    card: Option<u64>,
    read: Option<u64>,
    pin: Option<u64>,
    online: Option<u64>,
    card_timeout: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LinkSection {
    corrupt: Option<f64>,
    delay_ms: Option<u64>,
    seed: Option<u64>,
}

/// A currency by ISO 4217 letters or number (see [`posbridge_api::money::parse_currency`]).
pub fn parse_currency(s: &str) -> Result<Currency, ScenarioError> {
    posbridge_api::money::parse_currency(s).map_err(|e| ScenarioError(e.to_string()))
}

/// A payment method by name: `chip`, `contactless`, `swipe`, `qr` (customer-presented),
/// `merchant-qr`, `wallet`.
pub fn parse_method(s: &str) -> Result<PaymentMethod, ScenarioError> {
    Ok(match s {
        "chip" => PaymentMethod::Chip,
        "contactless" => PaymentMethod::Contactless,
        "swipe" => PaymentMethod::Swipe,
        "qr" => PaymentMethod::CustomerQr,
        "merchant-qr" => PaymentMethod::MerchantQr,
        "wallet" => PaymentMethod::Wallet,
        _ => {
            return Err(ScenarioError(format!(
                "method {s:?}: give chip, contactless, swipe, qr, merchant-qr or wallet"
            )));
        }
    })
}

/// A card by name: `approve`, `decline:NN` (an ISO 8583 response code such as 51 or 05),
/// `pin`, `wrong-pin`, `removed`, `no-card`, `partial:PERCENT`, `offline`.
pub fn parse_card(s: &str) -> Result<CardBehaviour, ScenarioError> {
    let bad = || {
        ScenarioError(format!(
            "card {s:?}: give approve, decline:NN, pin, wrong-pin, removed, no-card, partial:PERCENT or offline"
        ))
    };
    Ok(match s.split_once(':') {
        None => match s {
            "approve" => CardBehaviour::Approve,
            "pin" => CardBehaviour::PinRequired,
            "wrong-pin" => CardBehaviour::WrongPin,
            "removed" => CardBehaviour::CardRemoved,
            "no-card" => CardBehaviour::NoCard,
            "offline" => CardBehaviour::IssuerOffline,
            _ => return Err(bad()),
        },
        Some(("decline", code)) => {
            let n: u64 = code.parse().map_err(|_| bad())?;
            match CardBehaviour::for_amount(n) {
                d @ CardBehaviour::Decline(_) => d,
                _ => CardBehaviour::Decline(DeclineReason::DO_NOT_HONOUR),
            }
        }
        Some(("partial", p)) => CardBehaviour::Partial {
            percent: p
                .parse::<u8>()
                .ok()
                .filter(|p| (1..100).contains(p))
                .ok_or_else(bad)?,
        },
        _ => return Err(bad()),
    })
}

impl Scenario {
    /// Reads a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let file: File = toml::from_str(text).map_err(|e| ScenarioError(e.to_string()))?;
        let mut p = TerminalProfile::default();
        let t = file.terminal;
        if let Some(v) = t.merchant_name {
            p.merchant_name = v;
        }
        if let Some(v) = t.merchant_id {
            p.merchant_id = v;
        }
        if let Some(v) = t.model {
            p.model = v;
        }
        if let Some(v) = t.receipt_header {
            p.receipt_header = v;
        }
        if let Some(v) = t.receipts_in_result {
            p.receipts_in_result = v;
        }
        if let Some(v) = t.floor_limit {
            p.floor_limit = v;
        }
        if let Some(list) = t.methods {
            p.methods = list
                .iter()
                .map(|m| parse_method(m))
                .collect::<Result<_, _>>()?;
            if p.methods.is_empty() {
                return Err(ScenarioError("methods: at least one".into()));
            }
        }
        if let Some(list) = t.currencies {
            p.currencies = list
                .iter()
                .map(|c| parse_currency(c))
                .collect::<Result<_, _>>()?;
            if p.currencies.is_empty() {
                return Err(ScenarioError("currencies: at least one".into()));
            }
        }
        let (max_sale, max_refund) = (
            t.max_sale.unwrap_or(500_000),
            t.max_refund.unwrap_or(100_000),
        );
        p.limits = p
            .currencies
            .iter()
            .flat_map(|&currency| {
                [
                    AmountLimit {
                        kind: TransactionKind::Sale,
                        currency,
                        min: 1,
                        max: max_sale,
                    },
                    AmountLimit {
                        kind: TransactionKind::Refund,
                        currency,
                        min: 1,
                        max: max_refund,
                    },
                ]
            })
            .collect();
        let l = file.latency;
        let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
        let base = Latency::default();
        p.latency = Latency {
            card: ms(l.card, base.card),
            read: ms(l.read, base.read),
            pin: ms(l.pin, base.pin),
            online: ms(l.online, base.online),
            card_timeout: ms(l.card_timeout, base.card_timeout),
        };
        let cards = file
            .cards
            .iter()
            .map(|c| parse_card(c))
            .collect::<Result<_, _>>()?;
        let faults = file
            .faults
            .iter()
            .map(|f| f.parse::<Fault>().map_err(|e| ScenarioError(e.to_string())))
            .collect::<Result<_, _>>()?;
        let d = file.device;
        let device = &mut p.device;
        if let Some(v) = &d.battery {
            device.battery = count_or_none("battery", v, 100)?.map(|b| b as u8);
        }
        if let Some(v) = d.battery_drain {
            if v > 100 {
                return Err(ScenarioError(format!(
                    "device.battery_drain {v}: a percentage, 0 to 100"
                )));
            }
            device.battery_drain = v;
        }
        if let Some(v) = &d.power {
            device.power = parse_power(v)?;
        }
        if let Some(v) = &d.paper {
            device.paper = count_or_none("paper", v, i64::from(u32::MAX))?.map(|n| n as u32);
        }
        if let Some(v) = d.paper_low {
            device.paper_low = v;
        }
        if d.offline_for.is_some() && d.offline_after.is_none() {
            return Err(ScenarioError(
                "device.offline_for needs device.offline_after".into(),
            ));
        }
        if let Some(hex) = &d.update_key {
            let key: posbridge_wire::PublicKey = hex
                .parse()
                .map_err(|e| ScenarioError(format!("device.update_key {hex:?}: {e}")))?;
            device.update_key = Some(key);
        }
        if let Some(v) = d.update_fails {
            device.update_fails = v;
        }
        device.offline_after = d.offline_after;
        device.offline_for = d.offline_for.unwrap_or(u32::MAX);
        let c = file.customer;
        let customer = &mut p.customer;
        if let Some(v) = c.delay_ms {
            customer.delay = Duration::from_millis(v);
        }
        if let Some(v) = &c.tip {
            customer.tip = parse_tip(v)?;
        }
        if let Some(v) = c.confirm {
            customer.confirm = v;
        }
        if let Some(v) = c.number {
            customer.number = v;
        }
        if let Some(v) = c.signs {
            customer.signs = v;
        }
        if let Some(v) = c.absent {
            customer.absent = v;
        }
        let corrupt = file.link.corrupt.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&corrupt) {
            return Err(ScenarioError(format!(
                "link.corrupt {corrupt}: a probability, 0 to 1"
            )));
        }
        Ok(Self {
            profile: p,
            cards,
            faults,
            link: LinkFaults {
                corrupt,
                delay: Duration::from_millis(file.link.delay_ms.unwrap_or(0)),
                seed: file.link.seed.unwrap_or(1),
            },
        })
    }
}
