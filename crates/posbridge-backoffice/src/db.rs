//! Connections to PostgreSQL: a small pool that drops broken connections and makes new ones,
//! so that the service carries on after the database restarts or fails over (a connection
//! string with several hosts and `target_session_attrs=read-write` finds the new primary).

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls};

use crate::BackofficeError;

/// A pool of connections to one database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("hosts", &self.inner.config.get_hosts())
            .field("dbname", &self.inner.config.get_dbname())
            .finish_non_exhaustive()
    }
}

/// A connection taken from the pool; back to it when dropped (unless it broke).
pub struct Conn {
    client: Option<Client>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("held until dropped")
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("held until dropped")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(c) = self.client.take()
            && !c.is_closed()
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(c);
        }
    }
}

impl Db {
    /// A pool of at most `size` connections to the database `url` names (a libpq connection
    /// string or URL: `host=127.0.0.1 port=5432 user=posbridge dbname=backoffice`).
    pub fn new(url: &str, size: usize) -> Result<Self, BackofficeError> {
        let config: Config = url
            .parse()
            .map_err(|e| BackofficeError::Config(format!("database {url:?}: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(size.max(1))),
            }),
        })
    }

    /// A connection: an idle one that still works, or a new one.
    pub async fn get(&self) -> Result<Conn, BackofficeError> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| BackofficeError::Config("the pool is closed".into()))?;
        let idle = loop {
            let next = self
                .inner
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            match next {
                Some(c) if c.is_closed() => continue,
                other => break other,
            }
        };
        let client = match idle {
            Some(c) => c,
            None => {
                let (client, connection) = self.inner.config.connect(NoTls).await?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
            }
        };
        Ok(Conn {
            client: Some(client),
            pool: self.inner.clone(),
            _permit: permit,
        })
    }
}
