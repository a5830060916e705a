//! What protocol 1.1 adds at the counter: the terminal's own state (battery, paper, acquirer
//! link), a lease so that a second till does not take the terminal mid-order, the cart on the
//! customer display, a tip the customer chooses on the terminal, then the sale with that tip.
//!
//! Run: `cargo run -p posbridge-examples --example counter`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::MemoryJournal;
use posbridge::{
    Call, Cart, ConnectOptions, CustomerPrompt, NativeAdapter, NativeClient, PaymentTerminal,
    Payments,
};
use posbridge_crypto::{LocalIdentity, PairingSecret, PeerId};
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_wire::{
    CartLine, Currency, CustomerQuestion, CustomerReply, IdempotencyKey, LeaseState,
    TransactionCommand,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let terminal = common::terminal(Vec::new());
    let address = terminal.listen().await?;
    let link = posbridge::tcp::connect(&address, &Default::default()).await?;
    let client = NativeClient::connect(
        link,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: Arc::new(LocalIdentity::generate(PeerId::random()?, "Till 1")?),
            security: ClientSecurity::Pair(PairingSecret::code(&terminal.code)?),
            hello: common::hello("Till 1"),
            timeout: Duration::from_secs(30),
        },
    )
    .await?;
    let paired = client.paired().cloned().ok_or("not paired")?;
    let payments = Payments::new(
        NativeAdapter::new(client, Some(paired.peer.signing_key)),
        MemoryJournal::new(),
    );
    let call = Duration::from_secs(30);

    // The terminal itself.
    if let Some(t) = payments.telemetry(call).await? {
        println!(
            "terminal: battery {:?} %, paper {:?}, acquirer {:?}, {} stored offline",
            t.battery_percent, t.paper, t.acquirer, t.stored_offline
        );
    }
    // Keep the other tills off while this order is taken (the lease lasts a minute after this
    // till's last request).
    match payments
        .acquire("Till 1", Duration::from_secs(60), None)
        .await?
    {
        Some(LeaseState::Granted { .. }) => println!("lease: this till holds the terminal"),
        Some(other) => println!("lease: {other:?}"),
        None => println!("lease: this terminal takes commands from any till"),
    }
    // The cart on the customer display, then a tip chosen by the customer.
    let cart = Cart {
        lines: vec![
            CartLine {
                text: "Flat white".into(),
                quantity: Some(2),
                amount: 780,
            },
            CartLine {
                text: "Banana bread".into(),
                quantity: None,
                amount: 420,
            },
        ],
        currency: Currency::EUR,
        total: 1200,
        message: None,
    };
    println!(
        "customer display shows the cart: {}",
        payments.show_cart(&cart, call).await?
    );
    let tip = match payments
        .ask_customer(&CustomerPrompt {
            prompt: "Add a tip?".into(),
            question: CustomerQuestion::Tip {
                base: cart.total,
                currency: Currency::EUR,
                presets: vec![10, 15, 20],
                custom: false,
            },
            timeout: Duration::from_secs(60),
        })
        .await?
    {
        Some(CustomerReply::Tip(t)) => t,
        _ => 0,
    };
    println!("the customer tips {tip} cents");
    let result = payments
        .execute(
            IdempotencyKey(PeerId::random()?.0),
            TransactionCommand::Sale {
                amount: posbridge_wire::Amount::new(cart.total, Currency::EUR),
                tip: (tip > 0).then_some(tip),
                cashback: None,
            },
            Call::within(Duration::from_secs(120)),
        )
        .await?;
    println!(
        "sale: {:?}, {} + {} tip (EMV data on the receipt: {})",
        result.outcome,
        result.approved_minor,
        result.tip.unwrap_or(0),
        result.emv.is_some()
    );
    payments.release().await?;
    println!("lease given back");
    Ok(())
}
