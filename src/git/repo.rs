//! The config repository, as libgit2 sees it: a bare repository in a temporary directory that
//! holds the branch tip (fetched with depth 1, so a long history costs nothing) and the commits
//! this put makes. Nothing is checked out: files are read from and written to trees directly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use git2::build::TreeUpdateBuilder;
use git2::{
    AutotagOption, Commit, ErrorCode, FetchOptions, FileMode, ObjectType, Oid, PushOptions,
    RemoteCallbacks, Repository, Signature, TreeEntry,
};

use super::transport::Failure;
use crate::config::GitSource;
use crate::error::{Error, Result};

/// A YAML file under `paths` at the fetched tip.
pub struct File {
    pub path: String,
    pub text: String,
    blob: Oid,
    mode: i32,
}

/// How a push went.
pub enum Pushed {
    Yes,
    /// The branch moved on the server (someone else pushed); fetch again and redo.
    Rejected(String),
}

pub struct Repo {
    repo: Repository,
    dir: PathBuf,
    /// What the transport recorded about the last failure, in our words.
    failure: Arc<Failure>,
    /// `uri` with any userinfo removed: what messages name.
    pub server: String,
    uri: String,
    pub branch: String,
    push_branch: Option<String>,
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Repo {
    /// A fresh bare repository in the temporary directory; nothing is fetched yet.
    pub fn new(git: &GitSource, failure: Arc<Failure>, server: String) -> Result<Repo> {
        let dir = std::env::temp_dir().join(format!(
            "image-rollout-git-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        let repo = Repository::init_bare(&dir).map_err(|e| Error::File {
            path: dir.display().to_string(),
            message: format!("cannot create a scratch repository: {}", e.message()),
        })?;
        Ok(Repo {
            repo,
            dir,
            failure,
            server,
            uri: git.uri.clone(),
            branch: git.branch.clone(),
            push_branch: git.push_branch.clone(),
        })
    }

    fn error(&self, e: &git2::Error) -> Error {
        let message = match self.failure.take() {
            Some(message) => message,
            None => e.message().to_string(),
        };
        Error::Git {
            server: self.server.clone(),
            message,
        }
    }

    /// The branch commits are pushed to: `push_branch`, or `branch`.
    pub fn pushed_branch(&self) -> &str {
        self.push_branch.as_deref().unwrap_or(&self.branch)
    }

    /// Fetches the tips and returns the commit to build on: `branch`'s, or — with `push_branch`
    /// holding `branch` and commits not merged yet (a pull request still open) — the push
    /// branch's, so that each push is a fast-forward of it.
    pub fn fetch(&self) -> Result<Oid> {
        let Some(push_branch) = &self.push_branch else {
            return self.fetch_tips(1).map(|(base, _)| base);
        };
        let (base, pushed) = self.fetch_tips(1)?;
        let pushed = match pushed {
            Some(pushed) if pushed != base => pushed,
            // Missing (the push creates it) or at `branch`: build on `branch`.
            _ => return Ok(base),
        };
        // Which tip holds the other needs their history: the whole of it, only on this path
        // (depth 1 above keeps the usual put cheap).
        self.fetch_tips(i32::MAX)?;
        let descends = |a: Oid, b: Oid| {
            self.repo
                .graph_descendant_of(a, b)
                .map_err(|e| self.error(&e))
        };
        if descends(pushed, base)? {
            Ok(pushed)
        } else if descends(base, pushed)? {
            Ok(base)
        } else {
            Err(Error::Git {
                server: self.server.clone(),
                message: format!(
                    "push_branch `{push_branch}` has commits that `{}` lacks and `{}` has moved on since (a squash-merged or closed pull request?); nothing was pushed: delete `{push_branch}` (GitHub: \"Automatically delete head branches\") or merge `{}` into it",
                    self.branch, self.branch, self.branch
                ),
            })
        }
    }

    /// Fetches `branch` (which must exist) and `push_branch` (which may not) to `depth`
    /// (`i32::MAX`: the whole history) and returns their tips.
    fn fetch_tips(&self, depth: i32) -> Result<(Oid, Option<Oid>)> {
        let mut remote = self
            .repo
            .remote_anonymous(&self.uri)
            .map_err(|e| self.error(&e))?;
        let tracking = |branch: &str| format!("refs/remotes/origin/{branch}");
        let branches: Vec<&str> = std::iter::once(self.branch.as_str())
            .chain(self.push_branch.as_deref())
            .collect();
        let refspecs: Vec<String> = branches
            .iter()
            .map(|b| format!("+refs/heads/{b}:{}", tracking(b)))
            .collect();
        let mut options = FetchOptions::new();
        options.depth(depth).download_tags(AutotagOption::None);
        remote
            .fetch(&refspecs, Some(&mut options), None)
            .map_err(|e| self.error(&e))?;
        let pushed = self
            .push_branch
            .as_deref()
            .and_then(|b| self.repo.refname_to_id(&tracking(b)).ok());
        match self.repo.refname_to_id(&tracking(&self.branch)) {
            Ok(oid) => Ok((oid, pushed)),
            Err(_) => {
                let branches: Vec<String> = remote
                    .list()
                    .map(|heads| {
                        heads
                            .iter()
                            .filter_map(|h| h.name().strip_prefix("refs/heads/"))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                Err(Error::Git {
                    server: self.server.clone(),
                    message: format!(
                        "branch `{}` does not exist (branches: {}); check source.git.branch",
                        self.branch,
                        if branches.is_empty() {
                            "none".to_string()
                        } else {
                            branches.join(", ")
                        }
                    ),
                })
            }
        }
    }

    pub fn commit(&self, oid: Oid) -> Result<Commit<'_>> {
        self.repo.find_commit(oid).map_err(|e| self.error(&e))
    }

    /// Every `*.yaml` / `*.yml` file under `paths` (files or directories, recursively) at `tip`.
    /// A path that does not exist, or `paths` with no YAML at all, is an error naming them.
    pub fn yaml_files(&self, tip: Oid, paths: &[String]) -> Result<Vec<File>> {
        let tree = self.commit(tip)?.tree().map_err(|e| self.error(&e))?;
        let short = &tip.to_string()[..12];
        let mut files = Vec::new();
        for (index, path) in paths.iter().enumerate() {
            let clean = path.trim_matches('/');
            if clean.is_empty() || clean == "." {
                for entry in tree.iter() {
                    let name = entry.name().unwrap_or_default().to_string();
                    self.add_entry(&name, &entry, false, &mut files)?;
                }
                continue;
            }
            let entry = tree
                .get_path(Path::new(clean))
                .map_err(|_| Error::ConfigEntry {
                    key: "source.git.paths",
                    index,
                    message: format!(
                        "`{path}` does not exist on branch {} (commit {short})",
                        self.branch
                    ),
                })?;
            self.add_entry(clean, &entry, true, &mut files)?;
        }
        if files.is_empty() {
            return Err(Error::Config {
                key: "source.git.paths",
                message: format!(
                    "no YAML file (*.yaml, *.yml) under {} on branch {} (commit {short})",
                    paths.join(", "),
                    self.branch
                ),
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a.path == b.path);
        Ok(files)
    }

    /// Adds the YAML files of `entry`: itself if it is a file (any name, when `paths` names it),
    /// every `*.yaml` / `*.yml` below it if it is a directory.
    fn add_entry(
        &self,
        path: &str,
        entry: &TreeEntry,
        named: bool,
        files: &mut Vec<File>,
    ) -> Result<()> {
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let tree = self
                    .repo
                    .find_tree(entry.id())
                    .map_err(|e| self.error(&e))?;
                for child in tree.iter() {
                    let name = child.name().unwrap_or_default();
                    self.add_entry(&format!("{path}/{name}"), &child, false, files)?;
                }
                Ok(())
            }
            Some(ObjectType::Blob)
                if named || path.ends_with(".yaml") || path.ends_with(".yml") =>
            {
                self.add(path, entry.id(), entry.filemode(), files)
            }
            _ => Ok(()),
        }
    }

    fn add(&self, path: &str, blob: Oid, mode: i32, files: &mut Vec<File>) -> Result<()> {
        let content = self.repo.find_blob(blob).map_err(|e| self.error(&e))?;
        let text = String::from_utf8(content.content().to_vec()).map_err(|_| Error::File {
            path: path.into(),
            message: "is not UTF-8 text, so not YAML".into(),
        })?;
        files.push(File {
            path: path.into(),
            text,
            blob,
            mode,
        });
        Ok(())
    }

    /// A commit on `parent` with `changes` (file → new text) written over its tree.
    pub fn commit_files(
        &self,
        parent: Oid,
        changes: &[(&File, String)],
        message: &str,
        author: &Signature,
    ) -> Result<Oid> {
        let parent = self.commit(parent)?;
        let base = parent.tree().map_err(|e| self.error(&e))?;
        let mut update = TreeUpdateBuilder::new();
        for (file, text) in changes {
            let blob = self
                .repo
                .blob(text.as_bytes())
                .map_err(|e| self.error(&e))?;
            debug_assert_ne!(blob, file.blob);
            let mode = if file.mode == i32::from(FileMode::BlobExecutable) {
                FileMode::BlobExecutable
            } else {
                FileMode::Blob
            };
            update.upsert(file.path.as_str(), blob, mode);
        }
        let tree = update
            .create_updated(&self.repo, &base)
            .map_err(|e| self.error(&e))?;
        self.write_commit(&parent, tree, message, author)
    }

    /// A commit on `onto` that undoes `commit` (a three-way revert, so commits that landed in
    /// between are kept). `None` when there is nothing left to undo.
    pub fn revert(
        &self,
        commit: Oid,
        onto: Oid,
        message: &str,
        author: &Signature,
    ) -> Result<Option<Oid>> {
        let (ours, onto) = (self.commit(commit)?, self.commit(onto)?);
        let mut index = self
            .repo
            .revert_commit(&ours, &onto, 0, None)
            .map_err(|e| self.error(&e))?;
        if index.has_conflicts() {
            return Err(Error::Git {
                server: self.server.clone(),
                message: format!(
                    "cannot revert {commit}: the files were changed since; revert it by hand"
                ),
            });
        }
        let tree = index
            .write_tree_to(&self.repo)
            .map_err(|e| self.error(&e))?;
        if tree == onto.tree_id() {
            return Ok(None);
        }
        self.write_commit(&onto, tree, message, author).map(Some)
    }

    fn write_commit(
        &self,
        parent: &Commit,
        tree: Oid,
        message: &str,
        author: &Signature,
    ) -> Result<Oid> {
        let tree = self.repo.find_tree(tree).map_err(|e| self.error(&e))?;
        self.repo
            .commit(None, author, author, message, &tree, &[parent])
            .map_err(|e| self.error(&e))
    }

    /// Pushes `commit` to the pushed branch, fast-forward only (the refspec has no `+`, and
    /// libgit2 refuses a push whose remote tip is not an ancestor).
    pub fn push(&self, commit: Oid) -> Result<Pushed> {
        let local = format!("refs/heads/{}", self.pushed_branch());
        self.repo
            .reference(&local, commit, true, "image-rollout")
            .map_err(|e| self.error(&e))?;
        let mut remote = self
            .repo
            .remote_anonymous(&self.uri)
            .map_err(|e| self.error(&e))?;
        let mut rejected: Option<String> = None;
        let result = {
            let mut callbacks = RemoteCallbacks::new();
            callbacks.push_update_reference(|_, status| {
                if let Some(s) = status {
                    rejected = Some(s.to_string());
                }
                Ok(())
            });
            let mut options = PushOptions::new();
            options.remote_callbacks(callbacks);
            remote.push(&[format!("{local}:{local}")], Some(&mut options))
        };
        match result {
            Err(e) if e.code() == ErrorCode::NotFastForward => {
                Ok(Pushed::Rejected("the branch moved since the fetch".into()))
            }
            Err(e) => Err(self.error(&e)),
            Ok(()) => Ok(match rejected {
                Some(reason) => Pushed::Rejected(reason),
                None => Pushed::Yes,
            }),
        }
    }
}
