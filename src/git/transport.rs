//! How libgit2 reaches the Git server: it keeps the pack protocol, and a [`Connector`] written in
//! Rust carries the bytes — smart HTTP over reqwest (`http.rs`) or an ssh exec channel over
//! russh (`ssh.rs`). libgit2 is built without its own HTTPS and ssh, which would link OpenSSL and
//! libssh2.

use std::io;
use std::sync::{Arc, Mutex, Once};

use git2::Remote;
use git2::transport::Transport;

/// Builds libgit2's transport for one remote of this put's server.
pub trait Connector: Send + Sync {
    fn transport(self: Arc<Self>, remote: &Remote<'_>) -> Result<Transport, git2::Error>;
}

/// The connector of the running put: one put talks to one server.
static CURRENT: Mutex<Option<Arc<dyn Connector>>> = Mutex::new(None);

/// The URL prefixes libgit2 hands to [`CURRENT`]. libgit2 also sends scp-like `user@host:path`
/// remotes to whatever is registered for `ssh://`.
const SCHEMES: [&str; 3] = ["http", "https", "ssh"];

/// Makes libgit2 use `connector` for every remote from now on.
pub fn install(connector: Arc<dyn Connector>) -> Result<(), git2::Error> {
    *CURRENT.lock().expect("not poisoned") = Some(connector);
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| {
        for scheme in SCHEMES {
            // SAFETY: registration happens once, before any remote of this process exists.
            let registered = unsafe {
                git2::transport::register(scheme, |remote| {
                    let connector = CURRENT
                        .lock()
                        .expect("not poisoned")
                        .clone()
                        .ok_or_else(|| git2::Error::from_str("no Git transport installed"))?;
                    connector.transport(remote)
                })
            };
            if let Err(e) = registered {
                result = Err(e);
            }
        }
    });
    result
}

/// The first transport-level failure, in our words: libgit2 wraps transport errors in its own
/// phrasing, and the put wants to say "credentials refused", not "unexpected error".
#[derive(Default)]
pub struct Failure(Mutex<Option<String>>);

impl Failure {
    /// Records `message` (unless an earlier failure is already recorded) and returns it as the
    /// I/O error libgit2 gets.
    pub fn record(&self, message: String) -> io::Error {
        self.0
            .lock()
            .expect("not poisoned")
            .get_or_insert(message.clone());
        io::Error::other(message)
    }

    /// The failure recorded since the last call, if any.
    pub fn take(&self) -> Option<String> {
        self.0.lock().expect("not poisoned").take()
    }
}
