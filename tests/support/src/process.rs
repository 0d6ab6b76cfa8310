//! Long-running server processes (etcd, kube-apiserver, ...) that never outlive the test binary.
//!
//! Every child is forked from one dedicated thread that lives as long as the process, with
//! `PR_SET_PDEATHSIG = SIGKILL`. The kernel delivers that signal when the *thread* that forked the
//! child exits, not the process: forking from a test's own thread would kill the servers as soon
//! as the first test using them returns. A thread that never returns ties the children to the
//! process instead, so they die with it however it ends — normal exit, panic, SIGKILL.
//!
//! Output goes to a log file per server (appended, so a restarted server keeps its history);
//! [`Server::ensure_running`] panics with the tail of that log when the server died.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How a server is started: kept so that [`Server::restart`] runs exactly the same command.
#[derive(Clone, Debug)]
struct Recipe {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

type SpawnRequest = (Recipe, File, mpsc::Sender<std::io::Result<Child>>);

/// A running server process with its log file.
#[derive(Debug)]
pub struct Server {
    name: String,
    recipe: Recipe,
    log: PathBuf,
    child: Child,
}

impl Server {
    /// Starts `program args` with `env` added, stdout and stderr appended to `log`.
    pub fn start(
        name: &str,
        program: &Path,
        args: Vec<String>,
        env: &[(&str, &str)],
        log: &Path,
    ) -> Server {
        let recipe = Recipe {
            program: program.to_owned(),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let child = spawn(&recipe, log)
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        Server {
            name: name.to_owned(),
            recipe,
            log: log.to_owned(),
            child,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the tail of the log if the process has exited.
    pub fn ensure_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(40)
            );
        }
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Resident set size in bytes (`VmRSS` from /proc), 0 if the process is gone.
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// SIGTERM, then SIGKILL if the process is still there after `grace`; reaps it.
    pub fn stop(&mut self, grace: Duration) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process and starts the same command again (same arguments, same log).
    pub fn restart(&mut self, grace: Duration) {
        self.stop(grace);
        self.child = spawn(&self.recipe, &self.log)
            .unwrap_or_else(|e| panic!("cannot restart {}: {e}", self.name));
    }
}

pub(crate) fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own unreaped child.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// The last `lines` lines of a file (reads at most its last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn spawn(recipe: &Recipe, log: &Path) -> std::io::Result<Child> {
    let out = File::options().create(true).append(true).open(log)?;
    let (reply, answer) = mpsc::channel();
    spawner()
        .send((recipe.clone(), out, reply))
        .expect("spawner thread is gone");
    answer.recv().expect("spawner thread is gone")
}

/// The sender side of the spawner thread, started on first use and never stopped.
fn spawner() -> &'static mpsc::Sender<SpawnRequest> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("testbed-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop (and the thread) lasts until the
                // process ends, which is what PR_SET_PDEATHSIG needs.
                for (recipe, out, reply) in rx {
                    let _ = reply.send(fork_child(&recipe, out));
                }
            })
            .expect("cannot start the spawner thread");
        tx
    })
}

fn fork_child(recipe: &Recipe, out: File) -> std::io::Result<Child> {
    let err = out.try_clone()?;
    let parent = std::process::id() as libc::pid_t;
    let mut cmd = Command::new(&recipe.program);
    cmd.args(&recipe.args)
        .envs(recipe.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
    cmd.spawn()
}
