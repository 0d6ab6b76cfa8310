//! Git over ssh for libgit2, spoken by russh (pure Rust: no libssh2, no OpenSSL).
//!
//! What `git` does over ssh, done here: connect, check the host key against
//! `source.git.known_hosts`, authenticate with `source.git.private_key`, and run
//! `git-upload-pack '<path>'` or `git-receive-pack '<path>'` in an exec channel whose stdin and
//! stdout carry libgit2's pack protocol. The transport is stateful (one connection serves the ref
//! advertisement and the negotiation that follows), so libgit2 asks for a stream once per fetch or
//! push; each is its own connection.
//!
//! libgit2 calls in synchronously; the calls run on a blocking thread and drive the async client
//! with the runtime's handle, as `http.rs` does.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use git2::Remote;
use git2::transport::{Service, SmartSubtransport, SmartSubtransportStream, Transport};
use russh::client::{self, Handle as Session, Msg};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Preferred};
use tokio::runtime::Handle;

use super::known_hosts::{self, KnownHosts, Verdict, describe};
use super::transport::{Connector, Failure};
use crate::config::GitSource;
use crate::error::{Error, Result};

/// TCP connect, and then the whole handshake (key exchange and authentication).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection that stays silent this long ends (as the https read timeout).
const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of the server's stderr a failure message quotes.
const STDERR_LIMIT: usize = 1000;

/// Where the repository is: `ssh://[user@]host[:port]/path` or scp-like `[user@]host:path`.
#[derive(Debug, PartialEq, Eq)]
pub struct Address {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// As the server's `git-upload-pack` gets it: absolute for `ssh://`, relative to the
    /// account's home for scp-like URIs.
    pub path: String,
}

/// Whether `uri` names an ssh remote (as `git` decides: `ssh://`, or a `:` before any `/`).
pub fn is_ssh(uri: &str) -> bool {
    uri.starts_with("ssh://") || scp_like(uri).is_some()
}

/// `(user@host, path)` of an scp-like URI.
fn scp_like(uri: &str) -> Option<(&str, &str)> {
    if uri.contains("://") {
        return None;
    }
    // An IPv6 host is bracketed: `git@[::1]:repo.git`.
    let colon = match uri.find('[') {
        Some(open) => open + uri[open..].find("]:")? + 1,
        None => uri.find(':')?,
    };
    let (authority, path) = (&uri[..colon], &uri[colon + 1..]);
    (!authority.is_empty() && !authority.contains('/')).then_some((authority, path))
}

impl Address {
    /// The user is `git` when the URI names none (GitHub, GitLab, Gitea and Bitbucket all use it).
    pub fn parse(uri: &str) -> std::result::Result<Address, String> {
        let (user, host, port, path) = match scp_like(uri) {
            Some((authority, path)) => {
                let (user, host) = match authority.rsplit_once('@') {
                    Some((user, host)) => (user.to_string(), host),
                    None => (String::new(), authority),
                };
                (user, host.to_string(), 22, path.to_string())
            }
            None => {
                let url = reqwest::Url::parse(uri).map_err(|e| format!("is not a URL ({e})"))?;
                if url.password().is_some() {
                    return Err(
                        "contains a password; ssh authenticates with source.git.private_key".into(),
                    );
                }
                // The URL's path and user are percent-encoded (`a%20b.git`, and a space written
                // as is comes back encoded); git decodes both before it asks the server, so the
                // same URI reaches the same repository here.
                let decoded = |part: &str, what: &str| {
                    percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| format!("has a {what} that is not UTF-8 once percent-decoded"))
                };
                let path = decoded(url.path(), "path")?;
                // `ssh://host/~user/repo` is `~user/repo`, as git reads it.
                let path = path
                    .strip_prefix('/')
                    .filter(|p| p.starts_with('~'))
                    .unwrap_or(&path)
                    .to_string();
                (
                    decoded(url.username(), "user")?,
                    url.host_str().unwrap_or_default().to_string(),
                    url.port().unwrap_or(22),
                    path,
                )
            }
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err("has no host".into());
        }
        if path.trim_matches('/').is_empty() {
            return Err(
                "has no repository path (ssh://git@host/owner/repo.git or git@host:owner/repo.git)"
                    .into(),
            );
        }
        let user = if user.is_empty() { "git".into() } else { user };
        Ok(Address {
            user,
            host,
            port,
            path,
        })
    }

    /// The command that serves `program` for this repository, quoted as `git` quotes it.
    fn command(&self, program: &str) -> String {
        let mut quoted = String::from("'");
        for c in self.path.chars() {
            match c {
                '\'' | '!' => quoted.extend(['\'', '\\', c, '\'']),
                c => quoted.push(c),
            }
        }
        quoted.push('\'');
        format!("{program} {quoted}")
    }

    /// `host` or `[host]:port`, as known_hosts and messages name it.
    fn name(&self) -> String {
        known_hosts::name(&self.host, self.port)
    }

    /// What to run to get the host's keys.
    fn keyscan(&self) -> String {
        match self.port {
            22 => format!("ssh-keyscan {}", self.host),
            port => format!("ssh-keyscan -p {port} {}", self.host),
        }
    }
}

/// How the put talks to one ssh server.
pub struct Ssh {
    address: Address,
    key: Arc<PrivateKey>,
    known_hosts: KnownHosts,
    handle: Handle,
    pub failure: Arc<Failure>,
}

impl Ssh {
    /// Checks the ssh keys of `source.git` before anything connects.
    pub fn new(git: &GitSource, handle: Handle) -> Result<Arc<Ssh>> {
        let bad = |key: &'static str, message: String| Error::Config { key, message };
        let address = Address::parse(&git.uri).map_err(|m| bad("source.git.uri", m))?;
        let https_only = [
            ("source.git.username", git.username.is_some()),
            ("source.git.password", git.password.is_some()),
            ("source.git.ca_certs", !git.ca_certs.is_empty()),
            ("source.git.insecure", git.insecure),
        ];
        if let Some((key, _)) = https_only.iter().find(|(_, set)| *set) {
            return Err(bad(
                key,
                "is for https; an ssh URI authenticates with source.git.private_key (the user is the URI's) and verifies the server with source.git.known_hosts".into(),
            ));
        }
        let Some(known_hosts) = &git.known_hosts else {
            return Err(bad(
                "source.git.known_hosts",
                format!(
                    "is required with an ssh URI, so that the server is verified: add the output of `{}` (and compare the fingerprints with the ones the host publishes)",
                    address.keyscan()
                ),
            ));
        };
        let known_hosts =
            KnownHosts::parse(known_hosts).map_err(|m| bad("source.git.known_hosts", m))?;
        if known_hosts.keys(&address.host, address.port).is_empty() {
            return Err(bad(
                "source.git.known_hosts",
                format!(
                    "has no key for {}; add the output of `{}` (and compare the fingerprints with the ones the host publishes)",
                    address.name(),
                    address.keyscan()
                ),
            ));
        }
        let key = private_key(git)?;
        Ok(Arc::new(Ssh {
            address,
            key: Arc::new(key),
            known_hosts,
            handle,
            failure: Arc::default(),
        }))
    }

    fn fail(&self, message: String) -> io::Error {
        self.failure.record(message)
    }

    /// Connects, verifies, authenticates and starts `program` on the server.
    async fn open(self: &Arc<Self>, program: &'static str) -> io::Result<Stream> {
        let (address, name) = (&self.address, self.address.name());
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((address.host.as_str(), address.port)),
        )
        .await
        .map_err(|_| {
            self.fail(format!(
                "cannot connect to {name} (no answer within {CONNECT_TIMEOUT:?})"
            ))
        })?
        .map_err(|e| self.fail(format!("cannot connect to {name} ({e})")))?;
        let known = self.known_hosts.keys(&address.host, address.port);
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(INACTIVITY_TIMEOUT),
            preferred: Preferred {
                key: Cow::Owned(known_hosts::preferred(&known, &Preferred::DEFAULT.key)),
                ..Preferred::DEFAULT
            },
            ..Default::default()
        });
        let handshake = async {
            let mut session = client::connect_stream(config, tcp, Verifier(self.clone()))
                .await
                .map_err(|e| self.fail(format!("ssh handshake with {name} failed ({e})")))?;
            self.authenticate(&mut session).await?;
            Ok::<_, io::Error>(session)
        };
        let session = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| {
                self.fail(format!(
                    "ssh handshake with {name} did not finish within {HANDSHAKE_TIMEOUT:?}"
                ))
            })??;
        let command = address.command(program);
        let channel = session
            .channel_open_session()
            .await
            .map_err(|e| self.fail(format!("{name} opened no session ({e})")))?;
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(|e| self.fail(format!("cannot run {command} on {name} ({e})")))?;
        Ok(Stream {
            ssh: self.clone(),
            _session: session,
            channel,
            command,
            pending: Bytes::new(),
            stderr: Vec::new(),
            exit: None,
            ended: false,
        })
    }

    /// Public key authentication; a refusal is final (never retried).
    async fn authenticate(&self, session: &mut Session<Verifier>) -> io::Result<()> {
        let name = self.address.name();
        let lost = |e: russh::Error| {
            self.fail(format!(
                "ssh connection to {name} lost while authenticating ({e})"
            ))
        };
        let hash = if matches!(self.key.algorithm(), russh::keys::Algorithm::Rsa { .. }) {
            session
                .best_supported_rsa_hash()
                .await
                .map_err(lost)?
                .flatten()
        } else {
            None
        };
        let user = &self.address.user;
        let accepted = session
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(self.key.clone(), hash))
            .await
            .map_err(lost)?
            .success();
        if accepted {
            return Ok(());
        }
        Err(self.fail(format!(
            "{user}@{name} refused source.git.private_key ({}); add its public key to the repository as a deploy key with write access, or check the user in source.git.uri",
            describe(self.key.public_key())
        )))
    }
}

/// Decodes `source.git.private_key`; what goes wrong names the key to fix, never its content.
fn private_key(git: &GitSource) -> Result<PrivateKey> {
    let bad = |key: &'static str, message: String| Error::Config { key, message };
    let Some(text) = &git.private_key else {
        return Err(bad(
            "source.git.private_key",
            "is required with an ssh URI: the private half of a deploy key with write access (ssh-keygen -t ed25519)".into(),
        ));
    };
    let passphrase = git.private_key_passphrase.as_ref().map(|p| p.expose());
    russh::keys::decode_secret_key(text.expose(), passphrase).map_err(|e| match (e, passphrase) {
        (russh::keys::Error::KeyIsEncrypted, None) => bad(
            "source.git.private_key_passphrase",
            "is required: source.git.private_key is encrypted".into(),
        ),
        (_, Some(_)) if encrypted(text.expose()) => bad(
            "source.git.private_key_passphrase",
            "does not decrypt source.git.private_key".into(),
        ),
        (e, _) => bad(
            "source.git.private_key",
            format!("is not a private key this resource can read ({e}); give the whole key file, OpenSSH (BEGIN OPENSSH PRIVATE KEY) or PEM, ed25519, ECDSA or RSA"),
        ),
    })
}

/// Whether a key file is encrypted (then a failure to decode it is most likely the passphrase).
fn encrypted(text: &str) -> bool {
    text.contains("ENCRYPTED")
        || russh::keys::ssh_key::PrivateKey::from_openssh(text).is_ok_and(|k| k.is_encrypted())
}

/// Checks the server's host key against `source.git.known_hosts`; a refusal records why.
struct Verifier(Arc<Ssh>);

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let ssh = &self.0;
        let (address, name) = (&ssh.address, ssh.address.name());
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            ssh.fail(format!("{name} presented a host certificate, which is not supported; list its host key in source.git.known_hosts"));
            return Ok(false);
        };
        let refused = match ssh.known_hosts.check(&address.host, address.port, key) {
            Verdict::Trusted => return Ok(true),
            Verdict::Revoked => format!(
                "the host key of {name} ({}) is @revoked in source.git.known_hosts; refusing to connect",
                describe(key)
            ),
            Verdict::Mismatch(listed) => format!(
                "HOST KEY MISMATCH for {name}: it presented {}, source.git.known_hosts lists {}; refusing to connect (the host key changed, or something is in between: compare with the fingerprints the host publishes, then update source.git.known_hosts)",
                describe(key),
                listed.join(", ")
            ),
        };
        ssh.fail(refused);
        Ok(false)
    }
}

impl Connector for Ssh {
    /// Stateful (not `rpc`): the advertisement and the negotiation share one channel.
    fn transport(
        self: Arc<Self>,
        remote: &Remote<'_>,
    ) -> std::result::Result<Transport, git2::Error> {
        Transport::smart(remote, false, Subtransport(self))
    }
}

struct Subtransport(Arc<Ssh>);

impl SmartSubtransport for Subtransport {
    /// Called for the advertisements only: git2 hands the same stream to the negotiation that
    /// follows on a stateful transport.
    fn action(
        &self,
        _url: &str,
        service: Service,
    ) -> std::result::Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let program = match service {
            Service::UploadPackLs | Service::UploadPack => "git-upload-pack",
            Service::ReceivePackLs | Service::ReceivePack => "git-receive-pack",
        };
        let ssh = &self.0;
        match ssh.handle.block_on(ssh.open(program)) {
            Ok(stream) => Ok(Box::new(stream)),
            Err(e) => Err(git2::Error::from_str(&e.to_string())),
        }
    }

    fn close(&self) -> std::result::Result<(), git2::Error> {
        Ok(())
    }
}

/// One exec channel: libgit2 writes the program's stdin and reads its stdout.
struct Stream {
    ssh: Arc<Ssh>,
    /// Keeps the connection open as long as the channel is used.
    _session: Session<Verifier>,
    channel: Channel<Msg>,
    command: String,
    /// Stdout received and not read yet.
    pending: Bytes,
    stderr: Vec<u8>,
    exit: Option<u32>,
    ended: bool,
}

impl Stream {
    /// The channel closed: the end of the output, or the program failed (then its stderr says
    /// why: no such repository, no write access, ...).
    fn end(&mut self) -> io::Result<usize> {
        self.ended = true;
        if self.exit == Some(0) {
            return Ok(0);
        }
        let stderr = String::from_utf8_lossy(&self.stderr);
        let stderr: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let status = match self.exit {
            Some(code) => format!("exit status {code}"),
            None => "no exit status".into(),
        };
        Err(self.ssh.fail(format!(
            "{} on {} failed ({status}): {}; check source.git.uri and that the key may {}",
            self.command,
            self.ssh.address.name(),
            if stderr.is_empty() {
                "no message".into()
            } else {
                stderr.join(" ")
            },
            if self.command.starts_with("git-receive-pack") {
                "push"
            } else {
                "read"
            },
        )))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.ssh.handle.block_on(self.channel.wait()) {
                Some(ChannelMsg::Data { data }) => self.pending = data,
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    let room = STDERR_LIMIT.saturating_sub(self.stderr.len());
                    self.stderr.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => self.exit = Some(exit_status),
                Some(ChannelMsg::Failure) => {
                    return Err(self.ssh.fail(format!(
                        "{} refused to run {}; check that the account in source.git.uri may run Git commands",
                        self.ssh.address.name(),
                        self.command
                    )));
                }
                // The output ended; the exit status follows before the channel closes.
                Some(ChannelMsg::Close) | None => return self.end(),
                Some(_) => {}
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let sent = self
            .ssh
            .handle
            .block_on(self.channel.data_bytes(Bytes::copy_from_slice(data)));
        sent.map_err(|e| {
            self.ssh.fail(format!(
                "ssh connection to {} lost while sending ({e})",
                self.ssh.address.name()
            ))
        })?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str) -> Address {
        Address::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"))
    }

    #[test]
    fn ssh_uris_in_both_forms() {
        let address = |user: &str, host: &str, port, path: &str| Address {
            user: user.into(),
            host: host.into(),
            port,
            path: path.into(),
        };
        for (uri, expected) in [
            (
                "git@github.com:werdnum/config.git",
                address("git", "github.com", 22, "werdnum/config.git"),
            ),
            (
                "ssh://deploy@127.0.0.1:2222/srv/git/config.git",
                address("deploy", "127.0.0.1", 2222, "/srv/git/config.git"),
            ),
            (
                "ssh://gitlab.example.com/~alice/config.git",
                address("git", "gitlab.example.com", 22, "~alice/config.git"),
            ),
            (
                "git@[::1]:config.git",
                address("git", "::1", 22, "config.git"),
            ),
            (
                "ssh://git@[::1]:2222/config.git",
                address("git", "::1", 2222, "/config.git"),
            ),
            (
                "ssh://d%65ploy@h/srv/team%20a/conf%C3%AFg.git",
                address("deploy", "h", 22, "/srv/team a/confïg.git"),
            ),
            (
                "ssh://h/srv/team a/r.git",
                address("git", "h", 22, "/srv/team a/r.git"),
            ),
        ] {
            assert_eq!(parse(uri), expected);
        }
        assert!(is_ssh("git@github.com:o/r.git") && is_ssh("ssh://h/r"));
        for not_ssh in ["https://h/r.git", "./dir:x/r", "h/r.git", "file:///r"] {
            assert!(!is_ssh(not_ssh), "{not_ssh}");
        }
        for (bad, why) in [
            ("ssh://u:pw@h/r.git", "contains a password"),
            ("git@h:", "has no repository path"),
            ("ssh://h/", "has no repository path"),
            ("ssh://h/r%FF.git", "has a path that is not UTF-8"),
        ] {
            let error = Address::parse(bad).err().unwrap();
            assert!(error.starts_with(why), "{bad}: {error}");
        }
    }

    #[test]
    fn the_path_is_quoted_as_git_quotes_it() {
        let mut a = parse("git@h:team's/conf!g.git");
        assert_eq!(
            a.command("git-upload-pack"),
            r"git-upload-pack 'team'\''s/conf'\!'g.git'"
        );
        a.path = "/srv/a b.git".into();
        assert_eq!(
            a.command("git-receive-pack"),
            "git-receive-pack '/srv/a b.git'"
        );
        assert_eq!(a.keyscan(), "ssh-keyscan h");
        assert_eq!(parse("ssh://h:2222/r").keyscan(), "ssh-keyscan -p 2222 h");
    }
}
