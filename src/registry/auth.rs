//! Authentication against a registry: answer the `WWW-Authenticate` challenge of a 401 once
//! (Basic, or a Bearer token from the realm it names) and reuse the credential for the rest of
//! the process; for registries whose challenge is known before asking (ghcr.io, Docker Hub, or
//! one a previous check in this container saw), answer before the first request.
//! Parsing the challenge and the token is [`super::challenge`]'s job.

use std::time::Instant;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};

use super::challenge::{self, Challenge};
use super::response::error_detail;
use super::retry::{Attempts, classify};
use super::{MAX_TOKEN, Registry};
use crate::error::{Error, Result};
use crate::http::basic;

impl Registry {
    /// Sends one logical request: retries transient failures, answers one auth challenge.
    pub(super) async fn request(
        &self,
        what: &str,
        method: Method,
        path: &str,
        accept: &str,
    ) -> Result<Response> {
        let url = format!("{}/{path}", self.base);
        let refused = self.answer_before_asked().await;
        let resp = self.send(what, &method, &url, accept).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse)
            .ok_or_else(|| Error::Unauthorized {
                server: self.name.host.clone(),
                what: format!("{what}: HTTP 401 without a usable WWW-Authenticate challenge"),
            })?;
        // The credentials were refused by this very realm a moment ago: asking again would
        // only repeat the refusal.
        if let Some((guess, error)) = refused
            && guess.same_server(&challenge)
        {
            return Err(error);
        }
        let value = self.answer(&challenge, Attempts::Retried).await?;
        *self.authorization.lock().expect("not poisoned") = Some(value);
        let resp = self.send(what, &method, &url, accept).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let detail = error_detail(resp).await;
            return Err(Error::Unauthorized {
                server: self.name.host.clone(),
                what: format!("{what}: credentials refused (HTTP 401{detail})"),
            });
        }
        self.remembered.store(&challenge);
        Ok(resp)
    }

    /// Before the process's first request: answers the challenge the registry is known to make
    /// (ghcr.io, Docker Hub) or made a previous process, so the first request carries its
    /// credential. One attempt, best effort: on any failure the ordinary 401 path runs, and a
    /// refusal is handed back so that path need not ask the same realm twice.
    async fn answer_before_asked(&self) -> Option<(Challenge, Error)> {
        if self.guessed.replace(true) {
            return None;
        }
        let challenge = Challenge::known(&self.name.host).or_else(|| self.remembered.load())?;
        match self.answer(&challenge, Attempts::Once).await {
            Ok(value) => {
                *self.authorization.lock().expect("not poisoned") = Some(value);
                None
            }
            Err(error @ Error::Unauthorized { .. }) => Some((challenge, error)),
            Err(_) => None,
        }
    }

    /// Turns a challenge into an `Authorization` header value.
    async fn answer(&self, challenge: &Challenge, attempts: Attempts) -> Result<HeaderValue> {
        match challenge {
            Challenge::Basic => {
                let Some((user, password)) = &self.credentials else {
                    return Err(Error::Unauthorized {
                        server: self.name.host.clone(),
                        what: "the registry requires a username and password".into(),
                    });
                };
                Ok(basic(user, password))
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.name.path));
                let mut url = reqwest::Url::parse(realm).map_err(|_| {
                    self.invalid(
                        "auth challenge",
                        format!("token realm {realm:?} is not a URL"),
                    )
                })?;
                // The token request carries the credentials, and its answer is one: over plain
                // http both could be read (and the answer forged) on the way. A registry the
                // user reaches over https does not get to downgrade that.
                if url.scheme() == "http" && !self.base.starts_with("http:") {
                    return Err(self.invalid(
                        "auth challenge",
                        format!(
                            "the token realm {url} is plain http while the registry is https; refusing to send credentials in clear (the registry's auth configuration must name an https realm)"
                        ),
                    ));
                }
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(service) = service {
                        q.append_pair("service", service);
                    }
                    q.append_pair("scope", &scope);
                }
                let what = format!("token from {}", url.host_str().unwrap_or(realm));
                let request = || {
                    let req = self.http.get(url.clone());
                    match &self.credentials {
                        Some((user, password)) => req.header(AUTHORIZATION, basic(user, password)),
                        None => req,
                    }
                };
                let resp = match attempts {
                    Attempts::Retried => self.retrying(&what, request).await?,
                    Attempts::Once => {
                        let started = Instant::now();
                        classify(request().send().await)
                            .map_err(|e| self.final_error(&what, e, 1, started.elapsed()))?
                    }
                };
                match resp.status() {
                    s if s.is_success() => {}
                    s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                        let detail = error_detail(resp).await;
                        return Err(Error::Unauthorized {
                            server: self.name.host.clone(),
                            what: format!("{what}: refused (HTTP {}{detail})", s.as_u16()),
                        });
                    }
                    _ => return Err(self.status_error(&what, resp).await),
                }
                let body = self.body(&what, resp, MAX_TOKEN).await?;
                challenge::bearer(&body).map_err(|message| self.invalid(&what, message.into()))
            }
        }
    }

    /// One registry API exchange with the current credential, retried while the failure is
    /// transient.
    async fn send(&self, what: &str, method: &Method, url: &str, accept: &str) -> Result<Response> {
        let authorization = self.authorization.lock().expect("not poisoned").clone();
        self.retrying(what, || {
            let req = self
                .http
                .request(method.clone(), url)
                .header(ACCEPT, accept);
            match &authorization {
                Some(value) => req.header(AUTHORIZATION, value.clone()),
                None => req,
            }
        })
        .await
    }
}
