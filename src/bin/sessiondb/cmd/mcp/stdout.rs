//! Standard output for the server, which notices when it can no longer be written: the SDK
//! only logs a response it failed to send and goes on reading, so a client that closed our
//! output would otherwise keep a server that cannot answer.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::Notify;

pub struct Stdout {
    inner: tokio::io::Stdout,
    failure: WriteFailure,
}

/// The first error writing standard output, once there is one.
#[derive(Clone, Default)]
pub struct WriteFailure(Arc<(Mutex<Option<io::Error>>, Notify)>);

impl Stdout {
    pub fn new() -> Stdout {
        Stdout {
            inner: tokio::io::stdout(),
            failure: WriteFailure::default(),
        }
    }

    pub fn failure(&self) -> WriteFailure {
        self.failure.clone()
    }

    fn noted<T>(&self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &result {
            self.failure.set(io::Error::new(e.kind(), e.to_string()));
        }
        result
    }
}

impl WriteFailure {
    fn set(&self, error: io::Error) {
        let (slot, notify) = &*self.0;
        if let Ok(mut slot) = slot.lock() {
            slot.get_or_insert(error);
        }
        notify.notify_one();
    }

    /// Returns once a write has failed.
    pub async fn wait(&self) {
        self.0 .1.notified().await;
    }

    pub fn take(&self) -> Option<io::Error> {
        self.0 .0.lock().ok()?.take()
    }
}

impl AsyncWrite for Stdout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.noted(result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.noted(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
