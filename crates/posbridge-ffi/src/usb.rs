//! A USB terminal the app reaches through its own USB stack (Android's `UsbManager` and
//! `UsbDeviceConnection.bulkTransfer`): the app performs bulk transfers; posbridge-usb's link
//! keeps transfers queued in order, packet sizes and zero-length packets, and everything above
//! stays in Rust.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use posbridge_link::LinkInfo;
use posbridge_usb::{BulkEndpoints, TransferError, UsbConfig, UsbLink};
use tokio::sync::{mpsc, oneshot};

use crate::stream::LinkFailure;
use crate::{PosError, SecretStore, Terminal, on_runtime};

/// The app's bulk endpoints of a claimed USB interface. Transfers are handed to it one at a
/// time per direction, in order.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait UsbBulk: Send + Sync {
    /// The OUT endpoint's maximum packet size (64 at full speed, 512 at high speed).
    fn out_max_packet(&self) -> u32;
    /// The IN endpoint's maximum packet size.
    fn in_max_packet(&self) -> u32;
    /// One OUT transfer of `data` (empty: a zero-length packet).
    async fn bulk_out(&self, data: Vec<u8>) -> Result<(), LinkFailure>;
    /// One IN transfer of at most `max` bytes: what the device sent (empty: a zero-length
    /// packet). Waits until the device sends something.
    async fn bulk_in(&self, max: u32) -> Result<Vec<u8>, LinkFailure>;
}

type Done<T> = oneshot::Receiver<Result<T, TransferError>>;
/// A transfer handed to a direction's task, with where its completion goes.
type Job<A, T> = (A, oneshot::Sender<Result<T, TransferError>>);

/// posbridge-usb's endpoints over the app's: one task per direction keeps transfers in order.
struct ForeignBulk {
    out_max: usize,
    in_max: usize,
    outs: mpsc::UnboundedSender<Job<Vec<u8>, ()>>,
    ins: mpsc::UnboundedSender<Job<usize, Vec<u8>>>,
    out_pending: VecDeque<Done<()>>,
    in_pending: VecDeque<Done<Vec<u8>>>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

fn failed(e: LinkFailure) -> TransferError {
    TransferError::Other(e.to_string())
}

impl ForeignBulk {
    fn new(bulk: Arc<dyn UsbBulk>) -> Self {
        let (outs, mut out_rx) = mpsc::unbounded_channel::<Job<Vec<u8>, ()>>();
        let (ins, mut in_rx) = mpsc::unbounded_channel::<Job<usize, Vec<u8>>>();
        let writer = bulk.clone();
        let out_task = tokio::spawn(async move {
            while let Some((data, done)) = out_rx.recv().await {
                let _ = done.send(writer.bulk_out(data).await.map_err(failed));
            }
        });
        let reader = bulk.clone();
        let in_task = tokio::spawn(async move {
            while let Some((len, done)) = in_rx.recv().await {
                let _ = done.send(reader.bulk_in(len as u32).await.map_err(failed));
            }
        });
        Self {
            out_max: bulk.out_max_packet().max(8) as usize,
            in_max: bulk.in_max_packet().max(8) as usize,
            outs,
            ins,
            out_pending: VecDeque::new(),
            in_pending: VecDeque::new(),
            tasks: [out_task, in_task],
        }
    }
}

fn poll_front<T>(
    queue: &mut VecDeque<Done<T>>,
    cx: &mut Context<'_>,
) -> Poll<Result<T, TransferError>> {
    let Some(front) = queue.front_mut() else {
        return Poll::Ready(Err(TransferError::Cancelled));
    };
    match Pin::new(front).poll(cx) {
        Poll::Ready(r) => {
            queue.pop_front();
            Poll::Ready(r.unwrap_or(Err(TransferError::Cancelled)))
        }
        Poll::Pending => Poll::Pending,
    }
}

impl BulkEndpoints for ForeignBulk {
    fn out_max_packet(&self) -> usize {
        self.out_max
    }

    fn in_max_packet(&self) -> usize {
        self.in_max
    }

    fn submit_out(&mut self, data: Vec<u8>) {
        let (tx, rx) = oneshot::channel();
        let _ = self.outs.send((data, tx));
        self.out_pending.push_back(rx);
    }

    fn out_pending(&self) -> usize {
        self.out_pending.len()
    }

    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransferError>> {
        poll_front(&mut self.out_pending, cx)
    }

    fn submit_in(&mut self, len: usize) {
        let (tx, rx) = oneshot::channel();
        let _ = self.ins.send((len, tx));
        self.in_pending.push_back(rx);
    }

    fn in_pending(&self) -> usize {
        self.in_pending.len()
    }

    fn poll_in(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransferError>> {
        poll_front(&mut self.in_pending, cx)
    }

    fn cancel_all(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.out_pending.clear();
        self.in_pending.clear();
    }
}

/// How to pair over an app's USB terminal.
#[derive(Clone, Debug, uniffi::Record)]
pub struct UsbOptions {
    /// Where this till keeps its keys, the pairing and the journal (one directory per terminal).
    pub data_dir: String,
    /// The code the terminal shows, to pair now; `None` to use the pairing kept.
    pub pairing_code: Option<String>,
    /// This till's name, as the terminal shows it.
    pub till_name: String,
    /// A name for the device in logs (`"USB 1234:5678"`).
    pub description: String,
}

/// Connects to a terminal over the app's USB bulk endpoints (pairing first when a code is
/// given); keys in the app's `store` when given, else in files under the data directory.
#[uniffi::export(default(store = None))]
pub async fn connect_usb(
    bulk: Arc<dyn UsbBulk>,
    options: UsbOptions,
    store: Option<Arc<dyn SecretStore>>,
) -> Result<Arc<Terminal>, PosError> {
    on_runtime(async move {
        let info = LinkInfo::new(
            posbridge_link::LinkKind::Usb,
            posbridge_link::Delivery::Packet,
            64,
        )
        .with_address(options.description);
        let link = UsbLink::new(ForeignBulk::new(bulk), info, UsbConfig::default());
        // Messages larger than a packet are segmented (the terminal's side does the same).
        let link = posbridge_link::Segmented::new(link, 64 * 1024).map_err(crate::failed)?;
        crate::connect_link_stored(
            link,
            options.data_dir,
            options.pairing_code,
            options.till_name,
            store,
        )
        .await
    })
    .await
}
