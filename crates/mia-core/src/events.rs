//! The event sink seam: where sends, reads, clicks and conversions go.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::event::Event;
use crate::store::EventStore;

/// Records events. Must not block the send path for long and must never drop an event silently:
/// a sink that cannot keep up returns an error or waits.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Records `events`. Recording an event id twice counts it once.
    ///
    /// # Errors
    /// When the events could not be recorded; the caller keeps them and tries again.
    async fn record(&self, events: &[Event]) -> Result<()>;

    /// Writes out anything buffered.
    ///
    /// # Errors
    /// When buffered events could not be written.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    async fn record(&self, events: &[Event]) -> Result<()> {
        (**self).record(events).await
    }
    async fn flush(&self) -> Result<()> {
        (**self).flush().await
    }
}

/// The default sink: writes events straight to an [`EventStore`].
#[derive(Clone)]
pub struct StoreSink<S> {
    store: S,
}

impl<S> StoreSink<S> {
    /// A sink over `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

#[async_trait]
impl<S: EventStore> EventSink for StoreSink<S> {
    async fn record(&self, events: &[Event]) -> Result<()> {
        self.store.append_events(events).await.map(|_| ())
    }
}
