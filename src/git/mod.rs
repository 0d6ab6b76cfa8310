//! The config repository's Git: libgit2 keeps the pack protocol and the object database, and
//! transports written in Rust carry the bytes ([`transport`]: smart HTTP over reqwest in
//! [`http`], an ssh exec channel over russh in [`ssh`], host keys checked by [`known_hosts`]).
//! [`repo`] is the bare repository a put fetches into, commits in and pushes from. Nothing here
//! knows what a put is: the GitOps mode ([`crate::gitops`]) decides what to commit.

pub mod http;
pub mod known_hosts;
pub mod repo;
pub mod ssh;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use crate::config::GitSource;
use crate::error::{Error, Result};
use crate::http::{Timeouts, basic, client, credentials};
pub use repo::{Pushed, Repo};
use ssh::Ssh;
use transport::Failure;

/// Checks `source.git` and sets up the transport (ssh or HTTP) libgit2 will use; returns where
/// the transport records its failures.
pub fn connect(git: &GitSource) -> Result<Arc<Failure>> {
    let bad = |key: &'static str, message: &str| Error::Config {
        key,
        message: message.into(),
    };
    if git.paths.is_empty() {
        return Err(bad(
            "source.git.paths",
            "is empty; list the files or directories holding the manifests (e.g. [deploy/])",
        ));
    }
    for (key, branch) in [
        ("source.git.branch", Some(&git.branch)),
        ("source.git.push_branch", git.push_branch.as_ref()),
    ] {
        if let Some(branch) = branch
            && !git2::Reference::is_valid_name(&format!("refs/heads/{branch}"))
        {
            return Err(bad(
                key,
                &format!("{} is not a valid branch name", crate::error::quote(branch)),
            ));
        }
    }
    if git.push_branch.as_ref() == Some(&git.branch) {
        return Err(bad(
            "source.git.push_branch",
            "is the same as branch; leave it out to push to branch",
        ));
    }
    let handle = tokio::runtime::Handle::current();
    if ssh::is_ssh(&git.uri) {
        let ssh = Ssh::new(git, handle)?;
        install(git, ssh.clone())?;
        return Ok(ssh.failure.clone());
    }
    let ssh_only = [
        ("source.git.private_key", git.private_key.is_some()),
        (
            "source.git.private_key_passphrase",
            git.private_key_passphrase.is_some(),
        ),
        ("source.git.known_hosts", git.known_hosts.is_some()),
    ];
    if let Some((key, _)) = ssh_only.iter().find(|(_, set)| *set) {
        return Err(bad(
            key,
            "is for ssh URIs (ssh://git@host/owner/repo.git or git@host:owner/repo.git); over https use username and password (a token)",
        ));
    }
    let url = reqwest::Url::parse(&git.uri)
        .map_err(|e| bad("source.git.uri", &format!("is not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if git.insecure => {}
        "http" => {
            return Err(bad(
                "source.git.uri",
                "is plain http; use https, or set source.git.insecure: true to send credentials unencrypted",
            ));
        }
        other => {
            return Err(bad(
                "source.git.uri",
                &format!("scheme `{other}` is not supported; use https:// or ssh://"),
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "source.git.uri",
            "contains credentials; put them in source.git.username and source.git.password",
        ));
    }
    let credentials = credentials(
        git.username.as_ref(),
        git.password.as_ref(),
        ["source.git.username", "source.git.password"],
        " (any name works with a GitHub token)",
    )?;
    // No bound on a whole request (a pack can be large); a stalled read still ends after 60 s.
    let timeouts = Timeouts {
        connect: Duration::from_secs(10),
        read: Duration::from_secs(60),
        total: None,
    };
    let client = client(git.insecure, &git.ca_certs, "source.git.ca_certs", timeouts)?;
    let authorization = credentials.map(|(user, password)| basic(user, password));
    let http = http::Http::new(client, authorization, handle);
    install(git, http.clone())?;
    Ok(http.failure.clone())
}

fn install(git: &GitSource, connector: Arc<dyn transport::Connector>) -> Result<()> {
    transport::install(connector).map_err(|e| Error::Git {
        server: server_name(&git.uri),
        message: format!("cannot register the Git transport: {}", e.message()),
    })
}

/// The URI as messages show it.
pub fn server_name(uri: &str) -> String {
    uri.trim_end_matches('/').to_string()
}

/// Runs libgit2's synchronous work off the async thread (its transport blocks on the runtime).
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Process(format!("the Git worker stopped: {e}")))?
}
