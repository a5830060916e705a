//! Connections to PostgreSQL: a small pool that drops broken connections and makes new ones,
//! so that the service carries on after the database restarts or fails over (a connection
//! string with several hosts and `target_session_attrs=read-write` finds the new primary).

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::BackofficeError;

/// A pool of connections to one database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    idle: Mutex<Vec<Pooled>>,
    permits: Arc<Semaphore>,
    /// Days whose partition of `changes` is known to exist.
    partitions: Mutex<HashSet<i32>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("hosts", &self.inner.config.get_hosts())
            .field("dbname", &self.inner.config.get_dbname())
            .finish_non_exhaustive()
    }
}

/// A pooled connection and the statements prepared on it.
struct Pooled {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// A connection taken from the pool; back to it when dropped (unless it broke).
pub struct Conn {
    client: Option<Pooled>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client.as_ref().expect("held until dropped").client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client.as_mut().expect("held until dropped").client
    }
}

impl Conn {
    /// `sql` prepared on this connection: once per connection, not once per use (parsing and
    /// planning a statement is a round trip and, for a wide insert, a good part of its cost).
    pub async fn prepared(&mut self, sql: &'static str) -> Result<Statement, BackofficeError> {
        let pooled = self.client.as_mut().expect("held until dropped");
        if let Some(s) = pooled.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = pooled.client.prepare(sql).await?;
        pooled.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(c) = self.client.take()
            && !c.client.is_closed()
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
                partitions: Mutex::new(HashSet::new()),
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
                Some(c) if c.client.is_closed() => continue,
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
                Pooled {
                    client,
                    statements: HashMap::new(),
                }
            }
        };
        Ok(Conn {
            client: Some(client),
            pool: self.inner.clone(),
            _permit: permit,
        })
    }

    pub(crate) fn knows_partition(&self, day: i32) -> bool {
        self.partitions().contains(&day)
    }

    pub(crate) fn learn_partition(&self, day: i32) {
        self.partitions().insert(day);
    }

    pub(crate) fn forget_partitions(&self) {
        self.partitions().clear();
    }

    fn partitions(&self) -> std::sync::MutexGuard<'_, HashSet<i32>> {
        self.inner
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}
