//! `posbridge-load-tills DIR COUNT ADDR[,ADDR…] [BATCH]`: the tills of the back office's load and
//! fault test, in one process. Till `i` ships `DIR/till-<i>.db` with the identity
//! `testing::load_till_identity(i)` to whichever service instance answers (the next one when one
//! is unreachable), retrying until its outbox is empty; the process exits 0 when every till is
//! done. Killed at any moment and started again, it carries on from the journals' shipped marks.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use posbridge_backoffice::testing::load_till_identity;
use posbridge_sync::{Ack, HttpSink, Sink, SinkError, Uploader, UploaderConfig};

/// Every service instance, tried in turn from where the last success was.
struct Instances {
    sinks: Vec<HttpSink>,
    next: AtomicUsize,
}

/// One till's way to the instances.
struct Shared(Arc<Instances>);

impl Sink for Shared {
    async fn send(&self, till: &str, body: Vec<u8>, signature: String) -> Result<Ack, SinkError> {
        let this = &self.0;
        let start = this.next.load(Ordering::Relaxed);
        let mut last = None;
        for k in 0..this.sinks.len() {
            let i = (start + k) % this.sinks.len();
            match this.sinks[i]
                .send(till, body.clone(), signature.clone())
                .await
            {
                Ok(ack) => {
                    this.next.store(i, Ordering::Relaxed);
                    return Ok(ack);
                }
                Err(SinkError::Unreachable(e)) => last = Some(SinkError::Unreachable(e)),
                Err(other) => return Err(other),
            }
        }
        Err(last.unwrap_or_else(|| SinkError::Unreachable("no instance".into())))
    }
}

async fn run(dir: String, count: u32, addrs: Vec<SocketAddr>, batch: usize) -> Result<(), String> {
    let instances = Arc::new(Instances {
        sinks: addrs.into_iter().map(HttpSink::plain_http).collect(),
        next: AtomicUsize::new(0),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let identity = load_till_identity(i);
        let mut up = Uploader::open(
            format!("{dir}/till-{i}.db"),
            &identity,
            Shared(instances.clone()),
            UploaderConfig {
                batch,
                ..UploaderConfig::default()
            },
        )
        .map_err(|e| format!("till {i}: {e}"))?;
        tasks.spawn(async move {
            let mut wait = Duration::from_millis(20);
            loop {
                match up.ship().await {
                    Ok(_) => match up.status() {
                        Ok(s) if s.unshipped == 0 => return Ok(()),
                        Ok(_) => {}
                        Err(e) => return Err(format!("till {i}: {e}")),
                    },
                    Err(SinkError::Refused { status, detail }) => {
                        return Err(format!("till {i}: refused ({status}): {detail}"));
                    }
                    Err(_) => {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_millis(400));
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(count), Some(addrs)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: posbridge-load-tills DIR COUNT ADDR[,ADDR...] [BATCH]");
        return ExitCode::from(2);
    };
    let Ok(count) = count.parse::<u32>() else {
        eprintln!("COUNT: a number");
        return ExitCode::from(2);
    };
    let Ok(addrs) = addrs
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<SocketAddr>, _>>()
    else {
        eprintln!("ADDR: host:port, comma-separated");
        return ExitCode::from(2);
    };
    let batch = args.get(4).and_then(|b| b.parse().ok()).unwrap_or(100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(dir.clone(), count, addrs, batch)) {
        Ok(()) => {
            println!("all {count} tills shipped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("posbridge-load-tills: {e}");
            ExitCode::FAILURE
        }
    }
}
