//! A whole sale over the USB link logic (the in-memory bus: one packet per send at the maximum
//! packet size, segmentation of large messages) with the simulator on the device's side.

use std::sync::Arc;
use std::time::Duration;

use posbridge_link::{Delivery, LinkInfo, LinkKind, Segmented};
use posbridge_usb::{UsbConfig, UsbLink, memory_usb};

fn host(
    mps: usize,
) -> (
    UsbLink<posbridge_usb::MemoryEndpoints>,
    posbridge_usb::MemoryUsbDevice,
) {
    let (endpoints, device) = memory_usb(mps);
    let info = LinkInfo::new(LinkKind::Usb, Delivery::Packet, 0).with_address("bus 1 device 2");
    (UsbLink::new(endpoints, info, UsbConfig::default()), device)
}

#[tokio::test(start_paused = true)]
async fn a_sale_over_usb_bulk_with_the_simulator_on_the_device() {
    use posbridge::{ConnectOptions, NativeClient, driver};
    use posbridge_crypto::{LocalIdentity, PairingConfig, PairingSecret, PeerId};
    use posbridge_session::harness::hello;
    use posbridge_session::{
        ClientSecurity, PairingRegistry, SessionConfig, TerminalContext, TerminalSession,
    };
    use posbridge_sim::{Simulator, TerminalProfile};
    use posbridge_wire::{Amount, Currency, IdempotencyKey, Outcome, Timestamp};

    let (link, device) = host(64);
    let profile = TerminalProfile::default();
    let keys = Arc::new(LocalIdentity::generate(profile.terminal_id.into(), "usb sim").unwrap());
    let context = TerminalContext::new(
        keys.clone(),
        PairingRegistry::new(),
        profile.capabilities(),
        100,
    );
    let code = context
        .registry
        .lock()
        .unwrap()
        .open_window(PairingConfig::default(), driver::now())
        .unwrap()
        .to_string();
    let session = TerminalSession::new(SessionConfig::default(), context, driver::now());
    let mut sim = Simulator::new(profile, keys, driver::now(), Timestamp(1_764_000_000_000));
    let device = Segmented::new(device, 64 * 1024).unwrap();
    tokio::spawn(async move { driver::serve_terminal(session, device, &mut sim).await });

    let options = ConnectOptions {
        session: SessionConfig::default(),
        identity: Arc::new(LocalIdentity::generate(PeerId::random().unwrap(), "USB till").unwrap()),
        security: ClientSecurity::Pair(PairingSecret::code(&code).unwrap()),
        hello: hello(),
        timeout: Duration::from_secs(30),
    };
    let client = NativeClient::connect(Segmented::new(link, 64 * 1024).unwrap(), options)
        .await
        .expect("pair over USB");
    let result = client
        .sale(
            IdempotencyKey::from_u128(77),
            Amount::new(4200, Currency::EUR),
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    assert_eq!(result.outcome, Outcome::Approved);
    assert_eq!(result.approved_minor, 4200);
    client.close().await;
}
