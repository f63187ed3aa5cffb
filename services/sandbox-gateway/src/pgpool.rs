//! Plain `tokio-postgres` connections for what diesel does not do: streaming `COPY … FROM STDIN`
//! loads and queries whose columns the caller's SQL decides (STACK.md). The service's own tables
//! stay with diesel; these connections reach the same database.

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use tokio_postgres::{Client, NoTls};

pub struct Manager {
    url: String,
}

impl managed::Manager for Manager {
    type Type = Client;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "data connection closed");
            }
        });
        Ok(client)
    }

    async fn recycle(&self, client: &mut Client, _: &Metrics) -> RecycleResult<tokio_postgres::Error> {
        if client.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

pub type DataPool = managed::Pool<Manager>;
pub type DataConn = managed::Object<Manager>;

/// A pool of `size` data connections to `url`.
pub fn pool(url: &str, size: usize) -> Result<DataPool, String> {
    managed::Pool::builder(Manager { url: url.to_string() })
        .max_size(size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .build()
        .map_err(|e| e.to_string())
}
