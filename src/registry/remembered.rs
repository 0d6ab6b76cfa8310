//! Remembering, between processes, how a registry asked to be authenticated.
//!
//! A registry names its token realm only in the 401 it answers an unauthenticated request with,
//! so a cold `check` against a private registry costs three dependent round trips: the refused
//! request, the token, the request again. Concourse runs every check of a resource in the same
//! container for a session of 5 minutes to an hour (`atc/exec/check_step.go`: a check session's
//! container expires between those bounds), so the checks after the first in a container can
//! remember the challenge and fetch the token before the first request: two round trips for a
//! token registry, one for a `Basic` one, as for ghcr.io and Docker Hub (whose realms are
//! built in, [`Challenge::known`]).
//!
//! Only the challenge is kept (realm and service, or `Basic`), never a credential or a token: a
//! file per registry in `$TMPDIR/image-rollout-resource-<uid>/` (`/tmp` in the image). A wrong
//! or stale entry costs one token request; the 401 path still runs and rewrites it. An entry is
//! taken at its word for an hour at most, the longest Concourse keeps a check container.
//!
//! The directory decides where the registry credentials go next time, so it is used only if it
//! is ours alone: owned by this user, not a symbolic link, mode 0700 (like `~/.ssh`); anything
//! else and nothing is remembered. Every failure here is silent: remembering is an optimisation,
//! never a reason for a step to fail.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::challenge::Challenge;

/// The longest a remembered challenge is used without the registry repeating it.
const MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// An entry is a realm URL and a service name; anything longer was not written by us.
const MAX_ENTRY: u64 = 4096;

/// Where the challenge of one registry (scheme and host) is remembered. Nothing touches the disk
/// until a challenge is loaded or stored: a check of an open registry or of ghcr.io never needs
/// the directory, and only a store creates it.
pub struct Remembered {
    /// `$TMPDIR/image-rollout-resource-<uid>`, used only while [`private`].
    dir: PathBuf,
    file: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "scheme", rename_all = "lowercase")]
enum Entry {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

impl Remembered {
    /// The entry for `host` reached over `scheme`, kept in [`std::env::temp_dir`].
    pub fn new(scheme: &str, host: &str) -> Remembered {
        // Host names and ports are [a-z0-9.-:]; IPv6 literals add brackets. None of these
        // can climb out of the directory, but the name is kept to safe characters anyway.
        let name: String = format!("{scheme}_{host}")
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
                _ => '_',
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("image-rollout-resource-{}", euid()));
        Remembered {
            file: dir.join(name),
            dir,
        }
    }

    /// The challenge this registry last asked for, if remembered within the hour.
    pub fn load(&self) -> Option<Challenge> {
        if !private(&self.dir) {
            return None;
        }
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.file)
            .ok()?;
        let meta = f.metadata().ok()?;
        let fresh = SystemTime::now()
            .duration_since(meta.modified().ok()?)
            .is_ok_and(|age| age < MAX_AGE);
        if !meta.is_file() || meta.uid() != euid() || meta.len() > MAX_ENTRY || !fresh {
            return None;
        }
        let mut text = String::new();
        f.read_to_string(&mut text).ok()?;
        Some(match serde_json::from_str(&text).ok()? {
            Entry::Basic => Challenge::Basic,
            Entry::Bearer { realm, service } => Challenge::Bearer {
                realm,
                service,
                scope: None,
            },
        })
    }

    /// Remembers `challenge` (without its scope, which names one repository) for the next
    /// process. Written to a new file and renamed over the old, so a reader never sees half.
    pub fn store(&self, challenge: &Challenge) {
        // An existing directory is checked by `private`, whoever made it.
        let _ = DirBuilder::new().mode(0o700).create(&self.dir);
        if !private(&self.dir) {
            return;
        }
        let entry = match challenge {
            Challenge::Basic => Entry::Basic,
            Challenge::Bearer { realm, service, .. } => Entry::Bearer {
                realm: realm.clone(),
                service: service.clone(),
            },
        };
        let Ok(text) = serde_json::to_string(&entry) else {
            return;
        };
        let partial = self
            .file
            .with_extension(format!("{}.partial", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if written
            .and_then(|()| fs::rename(&partial, &self.file))
            .is_err()
        {
            let _ = fs::remove_file(&partial);
        }
    }
}

/// Whether `dir` is a directory (not a link to one) only this user can read and write.
fn private(dir: &Path) -> bool {
    fs::symlink_metadata(dir)
        .is_ok_and(|meta| meta.is_dir() && meta.uid() == euid() && meta.mode() & 0o077 == 0)
}

fn euid() -> u32 {
    // SAFETY: geteuid(2) only reads this process's credentials and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Remembered` in a directory of the test's own, as if it were the temp dir.
    fn in_dir(dir: &Path, name: &str) -> Remembered {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
        Remembered {
            dir: dir.to_path_buf(),
            file: dir.join(name),
        }
    }

    #[test]
    fn a_stored_challenge_comes_back_without_its_scope() {
        let dir = tempfile::tempdir().unwrap();
        let remembered = in_dir(dir.path(), "https_registry.example");
        assert_eq!(remembered.load(), None);
        remembered.store(&Challenge::Bearer {
            realm: "https://auth.example/token".into(),
            service: Some("registry.example".into()),
            scope: Some("repository:a/b:pull".into()),
        });
        assert_eq!(
            remembered.load(),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: None,
            })
        );
        remembered.store(&Challenge::Basic);
        assert_eq!(remembered.load(), Some(Challenge::Basic));
        let mode = fs::metadata(dir.path().join("https_registry.example"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the entry is private");
    }

    #[test]
    fn garbage_links_and_old_entries_are_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let remembered = in_dir(dir.path(), "entry");
        fs::write(dir.path().join("entry"), "not json").unwrap();
        assert_eq!(remembered.load(), None);

        // A link to a good entry is not followed: whoever can make links there could point it
        // anywhere.
        let good = in_dir(dir.path(), "good");
        good.store(&Challenge::Basic);
        fs::remove_file(dir.path().join("entry")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("good"), dir.path().join("entry")).unwrap();
        assert_eq!(good.load(), Some(Challenge::Basic));
        assert_eq!(remembered.load(), None);

        let old = SystemTime::now() - MAX_AGE - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(dir.path().join("good"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(good.load(), None, "older than an hour");
    }
}
