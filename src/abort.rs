//! Aborts: Concourse stops a step (`fly abort-build`, a step `timeout:`, a cancelled build) by
//! sending the resource process SIGTERM, then SIGKILL 10 s later (the ATC's
//! `gardenProcessStopGracePeriod`). Dying on the SIGTERM would leave a half-finished rollout
//! behind, so once a put is about to change something it catches SIGTERM and SIGINT and lets the
//! wait notice, undo what it changed and exit well within those 10 s.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// Whether (and by which signal) the step was asked to stop. Cheap to clone: every concurrent
/// wait holds one.
#[derive(Clone)]
pub struct Abort(watch::Receiver<Option<&'static str>>);

impl Abort {
    /// From now on SIGTERM and SIGINT no longer end the process; they are reported here instead.
    /// Needs a Tokio runtime (the listener is a task on it).
    pub fn on_signals() -> Result<Abort> {
        let listen = |kind: SignalKind| {
            signal(kind)
                .map_err(|e| Error::Request(format!("cannot listen for termination signals: {e}")))
        };
        let mut term = listen(SignalKind::terminate())?;
        let mut int = listen(SignalKind::interrupt())?;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            let _ = tx.send(Some(name));
            // Hold the sender so receivers keep seeing the signal; further signals change nothing.
            std::future::pending::<()>().await;
        });
        Ok(Abort(rx))
    }

    /// The signal received so far, if any.
    pub fn received(&self) -> Option<&'static str> {
        *self.0.borrow()
    }

    /// Resolves with the signal's name once one arrives (at once if one already did).
    pub async fn requested(&self) -> &'static str {
        let mut rx = self.0.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(name) => name.expect("waited for Some"),
            // The listener never drops its sender while the runtime runs.
            Err(_) => std::future::pending().await,
        }
    }
}
