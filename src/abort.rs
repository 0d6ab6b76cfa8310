//! Aborts: Concourse stops a step (`fly abort-build`, a step `timeout:`, a cancelled build) by
//! sending the resource process SIGTERM, then SIGKILL 10 s later (the ATC's
//! `gardenProcessStopGracePeriod`). Dying on the SIGTERM would leave a half-finished rollout
//! behind, so once a put is about to change something it catches SIGTERM and SIGINT and lets the
//! wait notice, undo what it changed and exit well within those 10 s.
//!
//! The same channel stops the other waits of a step when one part of it has failed: the whole
//! step is rolled back anyway, so waiting on is pointless.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// Why waiting should end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// SIGTERM or SIGINT.
    Signal(&'static str),
    /// Another part of the step failed (the text says which).
    Failed(String),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Signal(name) => write!(f, "aborted by {name}"),
            Cause::Failed(why) => write!(f, "stopped as {why}"),
        }
    }
}

/// Whether (and why) the step's waits should end. Cheap to clone: every concurrent wait holds
/// one.
#[derive(Clone)]
pub struct Abort {
    signal: watch::Receiver<Option<&'static str>>,
    failed: Option<watch::Receiver<Option<String>>>,
}

/// Ends the waits of the [`Abort`] it came with, when some part of the step failed.
pub struct Stopper(watch::Sender<Option<String>>);

impl Stopper {
    pub fn stop(&self, why: String) {
        self.0.send_if_modified(|cause| {
            let first = cause.is_none();
            if first {
                *cause = Some(why);
            }
            first
        });
    }
}

impl Abort {
    /// From now on SIGTERM and SIGINT no longer end the process; they are reported here instead.
    /// Needs a Tokio runtime (the listener is a task on it).
    pub fn on_signals() -> Result<Abort> {
        let listen = |kind: SignalKind| {
            signal(kind)
                .map_err(|e| Error::Process(format!("cannot listen for termination signals: {e}")))
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
        Ok(Abort {
            signal: rx,
            failed: None,
        })
    }

    /// A view that also ends when the returned [`Stopper`] is used; `self` still ends on signals
    /// only (what a rollback's own wait needs).
    pub fn or_failure(&self) -> (Abort, Stopper) {
        let (tx, rx) = watch::channel(None);
        let view = Abort {
            signal: self.signal.clone(),
            failed: Some(rx),
        };
        (view, Stopper(tx))
    }

    /// The signal received so far, if any.
    pub fn received(&self) -> Option<&'static str> {
        *self.signal.borrow()
    }

    /// Resolves once a signal arrives or the step failed elsewhere (at once if either already
    /// happened).
    pub async fn requested(&self) -> Cause {
        let signal = async {
            match self.signal.clone().wait_for(Option::is_some).await {
                Ok(name) => Cause::Signal(name.expect("waited for Some")),
                // The listener never drops its sender while the runtime runs.
                Err(_) => std::future::pending().await,
            }
        };
        let failed = async {
            let Some(failed) = &self.failed else {
                return std::future::pending().await;
            };
            match failed.clone().wait_for(Option::is_some).await {
                Ok(why) => Cause::Failed(why.clone().expect("waited for Some")),
                // The stopper is gone: the step's waits are over anyway.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            cause = signal => cause,
            cause = failed => cause,
        }
    }
}
