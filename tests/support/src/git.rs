//! A real Git server on loopback, serving one bare repository: Debian's `git http-backend` (smart
//! HTTP) run as CGI by lighttpd with basic auth (and TLS, optionally), or Debian's OpenSSH `sshd`
//! with its own host key and authorized keys, running `git-shell` (what restricted Git accounts
//! run). The real `git` CLI seeds the repository and checks what the resource pushed.
//!
//! Each server runs a small wrapper script in front of Git for one purpose a real server cannot be
//! asked for on cue: [`GitServer::race_next_push`] lands another commit (with the real
//! `git push`) right when the next push starts, between the put's fetch and its push.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::Server;
use crate::registry::free_port;

pub const USER: &str = "deployer";
pub const PASSWORD: &str = "s3cret-git-token";
/// The author of the seed commit (and of racing commits): never the resource's.
pub const SEED_AUTHOR: &str = "Seed Person <seed@example.com>";

pub struct GitServer {
    process: Server,
    /// `http(s)://127.0.0.1:PORT/git/config.git`, or `ssh://USER@127.0.0.1:PORT/…/config.git`
    pub url: String,
    /// The PEM CA of the TLS certificate (TLS servers only).
    pub ca_pem: Option<String>,
    /// The keys of an ssh server ([`GitServer::start_ssh`]).
    pub ssh: Option<SshKeys>,
    dir: TempDir,
}

/// What a client of the ssh server needs, and what it must not be able to use.
pub struct SshKeys {
    /// `ssh-keyscan -p PORT 127.0.0.1` of the server, by the real `ssh-keyscan`.
    pub known_hosts: String,
    /// known_hosts naming this server with another host key (a changed key, or a machine in
    /// between).
    pub wrong_known_hosts: String,
    /// Authorized private keys by the real `ssh-keygen`, by kind: `ed25519` (OpenSSH format),
    /// `rsa-pem` (PKCS#1 PEM), `ecdsa` (P-256, OpenSSH format), `ecdsa-pem` (P-384, SEC1 PEM),
    /// `ed25519-encrypted` (with [`PASSPHRASE`]).
    pub authorized: Vec<(&'static str, String)>,
    /// A well-formed key the server does not authorize.
    pub unauthorized: String,
    /// A key the server lets fetch and not push, answering a push as GitHub does for a read-only
    /// deploy key ([`READ_ONLY`] on stderr, exit 1).
    pub read_only: String,
}

/// What the server says to a push with the read-only key (GitHub's words).
pub const READ_ONLY: &str =
    "ERROR: The key you are authenticating with has been marked as read only.";

/// The passphrase of the `ed25519-encrypted` key.
pub const PASSPHRASE: &str = "key passphrase";

impl SshKeys {
    /// The authorized key of `kind`.
    pub fn key(&self, kind: &str) -> &str {
        let (_, key) = self
            .authorized
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("a key kind");
        key
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.process.stop(Duration::from_secs(5));
    }
}

impl GitServer {
    /// Plain HTTP (the resource needs `insecure: true`).
    pub fn start() -> GitServer {
        GitServer::start_with(false)
    }

    /// HTTPS with a certificate from a fresh CA ([`GitServer::ca_pem`]).
    pub fn start_tls() -> GitServer {
        GitServer::start_with(true)
    }

    fn start_with(tls: bool) -> GitServer {
        let dir = repository();
        let root = dir.path();
        // http-backend only serves what is exported, and receive-pack to authenticated users.
        std::fs::write(root.join("repos/config.git/git-daemon-export-ok"), "").unwrap();
        std::fs::create_dir_all(root.join("www")).unwrap();
        std::fs::write(root.join("users"), format!("{USER}:{PASSWORD}\n")).unwrap();
        let backend = wrapper(
            root,
            "backend.sh",
            r#"[ "$QUERY_STRING" = service=git-receive-pack ]"#,
            r#"[ "$QUERY_STRING" = service=git-upload-pack ]"#,
            "/usr/lib/git-core/git-http-backend",
        );

        let addr = free_port();
        let mut ca_pem = None;
        let mut ssl = String::new();
        if tls {
            let pki = crate::cluster::pki::Pki::new();
            let pair = pki.serving("127.0.0.1");
            let pem = root.join("server.pem");
            std::fs::write(&pem, format!("{}{}", pair.cert_pem, pair.key_pem)).unwrap();
            ssl = format!(
                "server.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\nssl.pemfile = \"{}\"\n",
                path(&pem)
            );
            ca_pem = Some(pki.ca_pem());
        }
        let config = root.join("lighttpd.conf");
        std::fs::write(
            &config,
            format!(
                r#"server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv", "mod_accesslog", "mod_redirect")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{www}"
server.errorlog = "{root}/error.log"
accesslog.filename = "{root}/access.log"
server.max-request-size = 1048576
auth.backend = "plain"
auth.backend.plain.userfile = "{root}/users"
auth.require = ("/git/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
alias.url = ("/git/" => "{backend}/")
# A renamed repository, as GitHub answers for one: every request under /moved/ gets a 301 to /git/.
url.redirect = ("^/moved/(.*)$" => "/git/$1")
url.redirect-code = 301
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}/repos", "GIT_HTTP_EXPORT_ALL" => "")
}}
{ssl}"#,
                port = addr.port(),
                www = path(&root.join("www")),
                root = path(root),
                backend = path(&backend),
            ),
        )
        .unwrap();
        let mut process = Server::start(
            "lighttpd",
            Path::new("/usr/sbin/lighttpd"),
            vec!["-D".into(), "-f".into(), path(&config).into()],
            &[],
            &root.join("lighttpd.log"),
        );
        wait_listening(&mut process, addr);
        let scheme = if tls { "https" } else { "http" };
        GitServer {
            process,
            url: format!("{scheme}://127.0.0.1:{}/git/config.git", addr.port()),
            ca_pem,
            ssh: None,
            dir,
        }
    }

    /// Debian's OpenSSH `sshd` on a free loopback port with its own host key, configuration and
    /// authorized keys, all in the server's temporary directory (`sshd -D -e -f` that file;
    /// `/etc/ssh` and `~/.ssh` are never read or written). Logins run `git-shell` on the
    /// repository, as the account of the user running the tests ([`SshKeys`]).
    ///
    /// sshd run as root insists on its privilege separation directory `/run/sshd`; rather than
    /// creating it on the host, root's sshd runs in a private mount namespace whose `/run` is a
    /// fresh tmpfs holding it.
    pub fn start_ssh() -> GitServer {
        let dir = repository();
        let root = dir.path();
        let ssh = root.join("ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let keygen = |name: &str, args: &[&str]| {
            let file = ssh.join(name);
            run(
                "ssh-keygen",
                &[&["-q", "-C", name, "-f", path(&file)], args].concat(),
            );
            (
                std::fs::read_to_string(&file).unwrap(),
                std::fs::read_to_string(file.with_extension("pub")).unwrap(),
            )
        };
        keygen("host", &["-t", "ed25519", "-N", ""]);
        let (_, other_host) = keygen("other-host", &["-t", "ed25519", "-N", ""]);
        let (unauthorized, _) = keygen("unauthorized", &["-t", "ed25519", "-N", ""]);
        let kinds: [(&'static str, &[&str]); 5] = [
            ("ed25519", &["-t", "ed25519", "-N", ""]),
            (
                "rsa-pem",
                &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", ""],
            ),
            ("ecdsa", &["-t", "ecdsa", "-b", "256", "-N", ""]),
            (
                "ecdsa-pem",
                &["-t", "ecdsa", "-b", "384", "-m", "PEM", "-N", ""],
            ),
            ("ed25519-encrypted", &["-t", "ed25519", "-N", PASSPHRASE]),
        ];
        let shell = wrapper(
            root,
            "git-shell.sh",
            r#"case "$SSH_ORIGINAL_COMMAND" in git-receive-pack*) true;; *) false;; esac"#,
            r#"case "$SSH_ORIGINAL_COMMAND" in git-upload-pack*) true;; *) false;; esac"#,
            r#"git-shell -c "$SSH_ORIGINAL_COMMAND""#,
        );
        let mut authorized = Vec::new();
        let mut authorized_keys = String::new();
        for (kind, args) in kinds {
            let (private, public) = keygen(kind, args);
            authorized_keys += &format!(
                "command=\"{}\",no-port-forwarding,no-pty {public}",
                path(&shell)
            );
            authorized.push((kind, private));
        }
        // Access rules per key are the Git host's, not sshd's: like GitHub, a forced command
        // refuses the push of a read-only key before Git runs.
        let (read_only, public) = keygen("read-only", &["-t", "ed25519", "-N", ""]);
        let refuse = root.join("read-only.sh");
        std::fs::write(
            &refuse,
            format!(
                "#!/bin/sh\ncase \"$SSH_ORIGINAL_COMMAND\" in git-receive-pack*) echo '{READ_ONLY}' >&2; exit 1;; esac\nexec git-shell -c \"$SSH_ORIGINAL_COMMAND\"\n"
            ),
        )
        .unwrap();
        set_executable(&refuse);
        authorized_keys += &format!("command=\"{}\",no-pty {public}", path(&refuse));
        std::fs::write(ssh.join("authorized_keys"), authorized_keys).unwrap();

        let user = run("id", &["-un"]).trim().to_string();
        let addr = free_port();
        let config = ssh.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}
ListenAddress 127.0.0.1
HostKey {ssh}/host
PidFile {ssh}/sshd.pid
AuthorizedKeysFile {ssh}/authorized_keys
# The keys are in a temporary directory under the world-writable /tmp, which StrictModes refuses.
StrictModes no
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
AllowUsers {user}
LogLevel VERBOSE
",
                port = addr.port(),
                ssh = path(&ssh),
            ),
        )
        .unwrap();
        let sshd = ["/usr/sbin/sshd", "-D", "-e", "-f", path(&config)].map(String::from);
        // SAFETY: geteuid(2) only reads this process's credentials.
        let (program, args) = if unsafe { libc::geteuid() } == 0 {
            let private_run =
                "set -e; mount -t tmpfs tmpfs /run; mkdir -m 755 /run/sshd; exec \"$@\"";
            let unshare = [
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                private_run,
                "sh",
            ];
            let args = unshare.iter().map(|a| a.to_string()).chain(sshd);
            ("/usr/bin/unshare", args.collect())
        } else {
            ("/usr/sbin/sshd", sshd.to_vec())
        };
        let mut process =
            Server::start("sshd", Path::new(program), args, &[], &ssh.join("sshd.log"));
        wait_listening(&mut process, addr);
        let port = addr.port().to_string();
        let known_hosts = run("ssh-keyscan", &["-p", &port, "-t", "ed25519", "127.0.0.1"]);
        assert!(
            known_hosts.contains("ssh-ed25519"),
            "ssh-keyscan: {known_hosts:?}"
        );
        let wrong_known_hosts = format!("[127.0.0.1]:{port} {other_host}");
        GitServer {
            process,
            url: format!(
                "ssh://{user}@127.0.0.1:{port}{}",
                path(&root.join("repos/config.git"))
            ),
            ca_pem: None,
            ssh: Some(SshKeys {
                known_hosts,
                wrong_known_hosts,
                authorized,
                unauthorized,
                read_only,
            }),
            dir,
        }
    }

    /// The bare repository on disk (for the real `git` to inspect).
    pub fn bare(&self) -> PathBuf {
        self.dir.path().join("repos/config.git")
    }

    /// The response bytes lighttpd has sent so far to clients whose User-Agent starts with
    /// `agent` (the `%b` of those access-log lines; lighttpd writes the log in batches, so give it
    /// a few seconds after the requests).
    pub fn bytes_sent(&self, agent: &str) -> u64 {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines()
            .filter(|line| {
                line.trim_end_matches('"')
                    .rsplit('"')
                    .next()
                    .is_some_and(|ua| ua.starts_with(agent))
            })
            .filter_map(|line| line.split('"').nth(2))
            .filter_map(|rest| rest.split_whitespace().nth(1))
            .filter_map(|bytes| bytes.parse::<u64>().ok())
            .sum()
    }

    /// Runs the real `git` in the bare repository and returns its stdout.
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.bare(), args)
    }

    /// Commits `files` (path → content) on `branch` as [`SEED_AUTHOR`] with the real git, pushed
    /// from a scratch clone straight into the bare repository. Returns the new commit.
    pub fn commit(&self, branch: &str, files: &[(&str, &str)], message: &str) -> String {
        let work = self.scratch_clone(branch);
        write_files(work.path(), files);
        commit_all(work.path(), message);
        git(
            work.path(),
            &["push", "--quiet", "origin", &format!("HEAD:{branch}")],
        );
        self.git(&["rev-parse", branch]).trim().to_string()
    }

    /// Makes the next push to the server first land a commit of `files` on `branch` (by the real
    /// `git`, as another pipeline or person would), so the put's push finds the branch moved.
    pub fn race_next_push(&self, branch: &str, files: &[(&str, &str)], message: &str) {
        let work = self.scratch_clone(branch);
        write_files(work.path(), files);
        commit_all(work.path(), message);
        let work = work.keep();
        std::fs::write(
            self.dir.path().join("race.sh"),
            format!("git -C {} push --quiet origin HEAD:{branch}\n", path(&work)),
        )
        .unwrap();
    }

    /// Makes the server run the shell `script` when the next fetch starts, before it answers
    /// (to act on a client exactly while it fetches, e.g. signal it).
    pub fn on_next_fetch(&self, script: &str) {
        std::fs::write(self.dir.path().join("fetch.sh"), script).unwrap();
    }

    /// Whether the prepared race has happened.
    pub fn raced(&self) -> bool {
        !self.dir.path().join("race.sh").exists()
    }

    fn scratch_clone(&self, branch: &str) -> TempDir {
        let work = tempfile::Builder::new()
            .prefix("git-work-")
            .tempdir_in(self.dir.path())
            .expect("tempdir");
        let has_branch = !self.git(&["branch", "--list", branch]).trim().is_empty();
        if has_branch {
            git(
                self.dir.path(),
                &[
                    "clone",
                    "--quiet",
                    "-b",
                    branch,
                    path(&self.bare()),
                    path(work.path()),
                ],
            );
        } else {
            git(work.path(), &["init", "--quiet", "-b", branch]);
            git(
                work.path(),
                &["remote", "add", "origin", path(&self.bare())],
            );
        }
        work
    }
}

/// A temporary directory holding the empty bare repository `repos/config.git` (branch `main`).
fn repository() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("git-server-")
        .tempdir()
        .expect("tempdir");
    let bare = dir.path().join("repos/config.git");
    git(
        dir.path(),
        &["init", "--quiet", "--bare", "-b", "main", path(&bare)],
    );
    dir
}

/// Writes the executable `root/name` that lands the prepared racing commit when `push_starts`
/// holds (see [`GitServer::race_next_push`]), then execs `serve`.
fn wrapper(root: &Path, name: &str, push_starts: &str, fetch_starts: &str, serve: &str) -> PathBuf {
    let file = root.join(name);
    std::fs::write(
        &file,
        format!(
            "#!/bin/sh\n\
             # Lands the prepared racing commit when the next push starts (see race_next_push),\n\
             # and runs the prepared hook when the next fetch starts (see on_next_fetch).\n\
             if {push_starts} && [ -f {race} ]; then\n\
               sh {race} >> {race}.log 2>&1; rm -f {race}\n\
             fi\n\
             if {fetch_starts} && [ -f {hook} ]; then\n\
               sh {hook} >> {hook}.log 2>&1; rm -f {hook}\n\
             fi\n\
             exec {serve}\n",
            race = path(&root.join("race.sh")),
            hook = path(&root.join("fetch.sh")),
        ),
    )
    .unwrap();
    set_executable(&file);
    file
}

fn wait_listening(process: &mut Server, addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        process.ensure_running();
        assert!(
            Instant::now() < deadline,
            "{} did not listen: {}",
            process.name(),
            process.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let file = root.join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
}

fn commit_all(root: &Path, message: &str) {
    git(root, &["add", "--all"]);
    let (name, email) = SEED_AUTHOR.split_once(" <").unwrap();
    let email = email.trim_end_matches('>');
    git(
        root,
        &[
            "-c",
            &format!("user.name={name}"),
            "-c",
            &format!("user.email={email}"),
            "commit",
            "--quiet",
            "-m",
            message,
        ],
    );
}

/// Runs `program args` (ssh-keygen, ssh-keyscan, id) and returns its stdout; panics with its
/// stderr when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().expect(program);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the real `git` in `dir`; panics with its stderr when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        // The host's git configuration must not change what the tests see.
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp paths")
}

fn set_executable(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755)).unwrap();
}
