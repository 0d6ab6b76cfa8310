//! Retries: which failures are worth another attempt (429, 5xx, no connection), how long to wait
//! (exponential backoff with jitter, `Retry-After` honoured but capped), and when to give up
//! (attempts and a time budget). Registry API and token requests both go through
//! [`Registry::retrying`], so both are retried alike; a refused certificate or a timed-out
//! request is not retried (it would be refused, or cost the full timeout, again).

use std::cell::Cell;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::RETRY_AFTER;
use reqwest::{Response, StatusCode};

use super::{CONNECT_TIMEOUT, READ_TIMEOUT, REQUEST_TIMEOUT, Registry};
use crate::error::{Error, Result};
use crate::http::{certificate_error, root_cause};

impl Registry {
    /// Sends the request `build` makes, again while the failure is transient (429, 5xx, no
    /// connection); the final error counts the attempts and the time they took. Registry API
    /// and token requests both go through here, so both are retried alike.
    pub(super) async fn retrying(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        let started = Instant::now();
        let attempts = Cell::new(0);
        (|| async {
            attempts.set(attempts.get() + 1);
            classify(build().send().await)
        })
        .retry(backoff())
        // The backoff bounds the sleeping; this bounds the whole, slow attempts included (a
        // registry that answers every request after 29 s would otherwise hold a check for
        // minutes).
        .when(|e| {
            !matches!(e, Attempt::Untrusted(_) | Attempt::Final(_))
                && started.elapsed() < RETRY_BUDGET
        })
        .adjust(adjust)
        .notify(|e, d| notify(what, e, d))
        .await
        .map_err(|e| self.final_error(what, e, attempts.get(), started.elapsed()))
    }

    pub(super) fn final_error(
        &self,
        what: &str,
        attempt: Attempt,
        attempts: usize,
        elapsed: Duration,
    ) -> Error {
        let server = self.name.host.clone();
        match attempt {
            Attempt::Unreachable(cause) => Error::Unreachable { server, cause },
            Attempt::Untrusted(cause) => Error::Untrusted { server, cause },
            Attempt::Final(message) => Error::InvalidResponse {
                server,
                what: what.into(),
                message,
            },
            Attempt::Transient { message, .. } => Error::GaveUp {
                server,
                what: what.into(),
                attempts,
                elapsed,
                last: message,
            },
        }
    }
}

/// How hard to try a request.
#[derive(Clone, Copy)]
pub(super) enum Attempts {
    /// Again while the failure is transient ([`Registry::retrying`]).
    Retried,
    /// Once: a guess, with the ordinary path behind it.
    Once,
}

/// Why one attempt failed. `Unreachable` and `Transient` are worth another attempt. `Untrusted`
/// and `Final` are not: a refused certificate would be refused again; a refused redirect, or a
/// registry that let a request time out (asking again could cost the full timeout each time).
/// Anything else is an answer.
#[derive(Debug)]
pub(super) enum Attempt {
    /// The server's certificate was refused: the same certificate would be refused again.
    Untrusted(String),
    Unreachable(String),
    Final(String),
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
}

pub(super) fn classify(result: reqwest::Result<Response>) -> Result<Response, Attempt> {
    let resp = result.map_err(|e| {
        if let Some(cause) = certificate_error(&e) {
            Attempt::Untrusted(cause)
        } else if e.is_timeout() {
            Attempt::Final(format!(
                "no complete answer in time (connect {CONNECT_TIMEOUT:?}, silence {READ_TIMEOUT:?}, whole request {REQUEST_TIMEOUT:?}); check that the registry is healthy"
            ))
        } else if e.is_redirect() {
            Attempt::Final(root_cause(&e))
        } else {
            Attempt::Unreachable(root_cause(&e))
        }
    })?;
    let status = resp.status();
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Err(Attempt::Transient {
            message: format!("HTTP {}", status.as_u16()),
            retry_after,
        });
    }
    Ok(resp)
}

/// No new attempt starts after this long since the first.
const RETRY_BUDGET: Duration = Duration::from_secs(60);

/// Exponential backoff with jitter: 250 ms doubling to 8 s, at most 5 retries and 30 s of sleep.
fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(8))
        .with_max_times(5)
        .with_total_delay(Some(Duration::from_secs(30)))
        .with_jitter()
}

/// Honour `Retry-After` (capped, so a registry cannot park a check for an hour) while the backoff
/// still allows another attempt.
fn adjust(attempt: &Attempt, planned: Option<Duration>) -> Option<Duration> {
    let planned = planned?;
    match attempt {
        Attempt::Transient {
            retry_after: Some(after),
            ..
        } => Some((*after).min(Duration::from_secs(20))),
        _ => Some(planned),
    }
}

fn notify(what: &str, attempt: &Attempt, delay: Duration) {
    let reason = match attempt {
        Attempt::Unreachable(cause) | Attempt::Untrusted(cause) | Attempt::Final(cause) => cause,
        Attempt::Transient { message, .. } => message,
    };
    eprintln!("{what}: {reason}; retrying in {:.1}s", delay.as_secs_f64());
}
