//! The GitOps mode of `put` (`source.git`): commit `repository@digest` into the YAML of a config
//! repository, push it fast-forward only, and — with cluster keys — wait, reading only, until the
//! agent (Flux, Argo CD) has applied it and the rollout is complete. Git is the truth: on failure
//! a revert commit is pushed and the agent brings the previous digest back; the cluster is never
//! written to.

pub mod edit;
pub mod flux;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::future::join_all;
use git2::{Oid, Signature};

use crate::abort::Abort;
use crate::cluster::wait::{self, WaitError, wait_error};
use crate::cluster::{self, Cluster, Observed, access};
use crate::config::{GitSource, OutParams, OutRequest, Source, Version, WorkloadRef};
use crate::deploy::{change_cause, deployable, label, workloads};
use crate::error::{Error, Result, comma};
use crate::git::{Pushed, Repo, blocking, connect, server_name};
use crate::protocol::{Metadata, StepOutput};
use crate::registry::ImageName;
use edit::Target;

/// Long enough for an agent's poll interval (Flux's default is 1–10 min) plus the rollout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// After a revert: for the agent to apply it and the previous images to roll out again. Its own
/// bound (`params.restore_timeout`), so that a failing put takes `timeout` plus this, not twice
/// `timeout`.
const DEFAULT_RESTORE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How often a push rejected because the branch moved is retried (fetch, redo the edit, push).
const PUSH_ATTEMPTS: usize = 5;

/// Runs a put in GitOps mode. `dir` is the build's working directory (`argv[1]`).
pub async fn put(request: OutRequest, dir: &Path) -> Result<StepOutput> {
    deliver(request, Image::Resolve(dir))
        .await
        .map(|d| d.output)
}

/// What to deploy.
pub enum Image<'a> {
    /// As a put does ([`deployable`]): a `get` step's directory under this build directory,
    /// `params.digest`, or the tag's digest now; `source.verify` applies.
    Resolve(&'a Path),
    /// Given by the caller: the GitHub Action, in the workflow that just pushed it.
    Given(Version),
}

/// What a GitOps deploy did: the put's output, and the same facts for the GitHub Action's outputs.
pub struct Delivered {
    pub output: StepOutput,
    /// `None` when every reference already was at the digest.
    pub commit: Option<String>,
    pub files: Vec<String>,
    pub previous: Vec<String>,
}

/// Commits the digest (and waits, with cluster keys): the GitOps mode, for `out` and the Action.
pub async fn deliver(request: OutRequest, image: Image<'_>) -> Result<Delivered> {
    let started = Instant::now();
    let OutRequest { source, params } = request;
    let git = source
        .git
        .clone()
        .expect("put() dispatches here only with source.git");
    if params.dry_run {
        return Err(Error::Config {
            key: "params.dry_run",
            message: "is not available with source.git: what is pushed is what the agent applies"
                .into(),
        });
    }
    let failure = connect(&git)?;
    let server = server_name(&git.uri);
    let version = match image {
        Image::Resolve(dir) => deployable(&source, &params, dir).await?,
        Image::Given(version) => version,
    };
    let digest = version.digest.clone();
    let image = format!("{}@{digest}", source.repository);
    let repository = ImageName::parse(&source.repository)?;
    let timeout = params.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let restore_timeout = params.restore_timeout.unwrap_or(DEFAULT_RESTORE_TIMEOUT);

    // Read the workloads before pushing: what they run now is what a failure goes back to, and a
    // missing workload or permission fails the put before anything is pushed.
    let watch = match watched(&source, &params)? {
        Some(list) if params.wait.unwrap_or(true) => Some(
            Watch::read(
                &source,
                &params,
                list,
                &repository,
                [timeout, restore_timeout],
            )
            .await?,
        ),
        _ => None,
    };

    let repo = Repo::new(&git, failure, server)?;
    let tag = version.tag.as_deref();
    let message = format!(
        "deploy {}\n\n{}\n",
        label(&image, tag),
        change_cause(&image, tag).replacen("image-rollout ", "by image-rollout: ", 1)
    );
    let (repo, deployed) = blocking({
        let (git, image, digest) = (git.clone(), image.clone(), digest.to_string());
        let tag = version.tag.clone();
        let repository = repository.clone();
        let abort = watch.as_ref().map(|w| w.abort.clone());
        move || {
            let target = Target {
                repository: &repository,
                image: &image,
                digest: &digest,
                tag: tag.as_deref(),
            };
            let deployed = deploy(&repo, &git, &target, &message, abort.as_ref());
            deployed.map(|d| (repo, d))
        }
    })
    .await?;
    match deployed.commit {
        Some(commit) => eprintln!(
            "pushed {commit} to {} {}: {} ({})",
            repo.server,
            repo.pushed_branch(),
            comma(&deployed.files),
            comma(&deployed.previous)
        ),
        None => eprintln!(
            "{} {} already deploys {image} in {}; nothing to commit",
            repo.server,
            repo.pushed_branch(),
            comma(&deployed.files)
        ),
    }

    let mut metadata = vec![
        Metadata::new(
            "commit",
            deployed
                .commit
                .map(|c| c.to_string())
                .unwrap_or_else(|| "none (already at the digest)".into()),
        ),
        Metadata::new("branch", git.pushed_branch()),
        Metadata::new("files", comma(&deployed.files)),
        Metadata::new("previous_images", comma(&deployed.previous)),
        Metadata::new("image", &image),
    ];
    if git.push_branch.is_some() {
        metadata.insert(2, Metadata::new("base_branch", &git.branch));
    }
    if let Some(watch) = &watch {
        let revisions = watch.wait(&image).await;
        if let Err(failure) = revisions {
            return Err(watch
                .fail(failure, &image, repo, deployed.commit, &params, &git)
                .await);
        }
        metadata.extend([
            Metadata::new("namespace", &watch.cluster.namespace),
            Metadata::new("workloads", comma(watch.workloads.iter().map(|(w, _)| w))),
            Metadata::new("revision", comma(revisions.unwrap_or_default())),
        ]);
    }
    metadata.extend([
        Metadata::new("duration", format!("{}s", started.elapsed().as_secs())),
        Metadata::new("rolled_back", "false"),
    ]);
    Ok(Delivered {
        output: StepOutput { version, metadata },
        commit: deployed.commit.map(|c| c.to_string()),
        files: deployed.files,
        previous: deployed.previous,
    })
}

/// Where an agent says why it did not apply a commit.
const AGENT_STATUS: &str = "Flux's GitRepository and Kustomization status (kubectl get gitrepositories,kustomizations -A; flux get kustomizations), or Argo CD's Application (argocd app get)";

/// Why a wait for the agent ended without the rollout.
struct Failed {
    /// Every workload's failure, in one line.
    line: String,
    /// Every workload timed out still running what it ran before: the agent never applied.
    never_applied: bool,
}

/// What the deploy commit did.
struct Deployed {
    /// `None` when every reference already was at the digest.
    commit: Option<Oid>,
    files: Vec<String>,
    previous: Vec<String>,
}

/// Fetch the tip, edit, commit, push; on a rejected push (the branch moved) start over from the
/// new tip, at most [`PUSH_ATTEMPTS`] times.
/// `abort` (set when the put will wait, so SIGTERM no longer ends the process): a signal that
/// arrives while fetching or editing stops the put before its push, so nothing needs reverting.
fn deploy(
    repo: &Repo,
    git: &GitSource,
    target: &Target,
    message: &str,
    abort: Option<&Abort>,
) -> Result<Deployed> {
    let author = signature(git)?;
    let mut files_changed = Vec::new();
    let mut previous = Vec::new();
    let commit = push_with_retry(repo, |tip| {
        let files = repo.yaml_files(tip, &git.paths)?;
        let mut changes = Vec::new();
        let mut matches = 0;
        previous.clear();
        // Only files that name the repository are parsed: a Helm template under `paths` is not
        // YAML, and is no concern of this put unless it names the image.
        for file in files
            .iter()
            .filter(|f| edit::mentions(&f.text, target.repository))
        {
            let edited = edit::edit(&file.text, target).map_err(|e| Error::File {
                path: file.path.clone(),
                message: format!("{e}; nothing was pushed"),
            })?;
            matches += edited.matches;
            previous.extend(edited.previous);
            if edited.text != file.text {
                changes.push((file, edited.text));
            }
        }
        if matches == 0 {
            return Err(Error::Config {
                key: "source.git.paths",
                message: format!(
                    "no image of {} in {} (branch {}); nothing was pushed",
                    target.image.split('@').next().unwrap_or_default(),
                    comma(files.iter().map(|f| &f.path)),
                    repo.branch
                ),
            });
        }
        files_changed = changes.iter().map(|(f, _)| f.path.clone()).collect();
        if changes.is_empty() {
            files_changed = files.iter().map(|f| f.path.clone()).collect();
            return Ok(None);
        }
        if let Some(signal) = abort.and_then(Abort::received) {
            return Err(Error::Aborted(format!(
                "aborted by {signal} before pushing; nothing was pushed"
            )));
        }
        repo.commit_files(tip, &changes, message, &author).map(Some)
    })?;
    previous.sort();
    previous.dedup();
    Ok(Deployed {
        commit,
        files: files_changed,
        previous,
    })
}

/// Fetch the tip, let `make` build a commit on it (or decide there is nothing to do), push it.
/// A rejection is retried only when the branch really moved; otherwise (a hook, a protection
/// rule) the server's reason ends the put.
fn push_with_retry(
    repo: &Repo,
    mut make: impl FnMut(Oid) -> Result<Option<Oid>>,
) -> Result<Option<Oid>> {
    let mut last: Option<(Oid, String)> = None;
    for attempt in 1..=PUSH_ATTEMPTS {
        let tip = repo.fetch()?;
        if let Some((previous_tip, reason)) = &last
            && *previous_tip == tip
        {
            return Err(Error::Git {
                server: repo.server.clone(),
                message: format!("push to {} rejected: {reason}", repo.pushed_branch()),
            });
        }
        let Some(commit) = make(tip)? else {
            return Ok(None);
        };
        match repo.push(commit)? {
            Pushed::Yes => return Ok(Some(commit)),
            Pushed::Rejected(reason) => {
                eprintln!(
                    "push to {} rejected ({reason}); fetching again ({attempt}/{PUSH_ATTEMPTS})",
                    repo.pushed_branch()
                );
                last = Some((tip, reason));
            }
        }
    }
    Err(Error::Git {
        server: repo.server.clone(),
        message: format!(
            "gave up after {PUSH_ATTEMPTS} pushes: {} kept moving; nothing of this put was pushed",
            repo.pushed_branch()
        ),
    })
}

fn signature(git: &GitSource) -> Result<Signature<'static>> {
    Signature::now(&git.author_name, &git.author_email).map_err(|e| Error::Config {
        key: "source.git.author_name",
        message: format!("is not a usable commit author ({})", e.message()),
    })
}

/// The workloads to wait for, when cluster keys are set at all.
fn watched(source: &Source, params: &OutParams) -> Result<Option<Vec<WorkloadRef>>> {
    let any = source.deployment.is_some()
        || source.workloads.is_some()
        || params.deployment.is_some()
        || params.workloads.is_some();
    if any {
        workloads(source, params).map(Some)
    } else {
        Ok(None)
    }
}

/// The workloads as they were before the push, watched read-only afterwards.
struct Watch {
    cluster: Cluster,
    workloads: Vec<(WorkloadRef, Observed)>,
    /// How the workloads' containers were selected, to read them again after a revert.
    container: Option<String>,
    repository: ImageName,
    abort: Abort,
    /// The deploy's wait, then the restore's after a revert.
    timeouts: [Duration; 2],
}

impl Watch {
    async fn read(
        source: &Source,
        params: &OutParams,
        list: Vec<WorkloadRef>,
        repository: &ImageName,
        timeouts: [Duration; 2],
    ) -> Result<Watch> {
        let cluster = cluster::connect(source, params).await?;
        let [deploy, restore] = timeouts;
        cluster::note_if_short_lived(deploy + restore, "params.timeout + params.restore_timeout");
        // Before anything is pushed: a Role missing a verb would otherwise show only after the
        // push, as a forbidden watch.
        access::review(&cluster, &list, access::Mode::Watch).await?;
        let container = params.container.as_deref().or(source.container.as_deref());
        let mut workloads = Vec::new();
        for w in list {
            let observed = cluster.observe(&w, container, repository).await?;
            workloads.push((w, observed));
        }
        // From here on SIGTERM/SIGINT end the wait (and revert) instead of killing the process.
        let abort = Abort::on_signals()?;
        Ok(Watch {
            cluster,
            workloads,
            container: container.map(str::to_string),
            repository: repository.clone(),
            abort,
            timeouts,
        })
    }

    /// Waits for every workload to run `image` — or, with `back`, what it ran before — with a
    /// complete rollout. Meanwhile the template may still run the other one: the agent has not
    /// applied the commit yet; anything else means someone else changed it. Returns the
    /// revisions, or every failure.
    async fn wait_for(&self, image: &str, back: bool) -> Result<Vec<String>, Failed> {
        let results = join_all(self.workloads.iter().map(|(w, observed)| {
            let ours: BTreeMap<String, String> = observed
                .images
                .keys()
                .map(|c| (c.clone(), image.to_string()))
                .collect();
            async move {
                let (images, applying) = if back {
                    (&observed.images, &ours)
                } else {
                    (&ours, &observed.images)
                };
                wait::workload(
                    &self.cluster,
                    w,
                    &observed.selector,
                    images,
                    Some(applying),
                    self.timeouts[usize::from(back)],
                    &self.abort,
                )
                .await
                .map_err(|e| (matches!(e, WaitError::NotApplied { .. }), wait_error(w, e)))
            }
        }))
        .await;
        let failures: Vec<&(bool, Error)> =
            results.iter().filter_map(|r| r.as_ref().err()).collect();
        if failures.is_empty() {
            return Ok(results.into_iter().filter_map(|r| r.ok()).collect());
        }
        Err(Failed {
            line: failures
                .iter()
                .map(|(_, e)| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            never_applied: failures.iter().all(|(not_applied, _)| *not_applied),
        })
    }

    /// Whether any workload's template runs `image` now (one GET each; a failed read says no:
    /// this only picks the wording of the put's error).
    async fn runs_now(&self, image: &str) -> bool {
        for (w, _) in &self.workloads {
            let now = self
                .cluster
                .observe(w, self.container.as_deref(), &self.repository)
                .await;
            if now.is_ok_and(|o| o.images.values().any(|i| i == image)) {
                return true;
            }
        }
        false
    }

    /// After the revert `revert` is pushed and the images are back: Flux's word that it holds the
    /// revert (see [`flux`]), as a clause for the put's error line ("" when not asked).
    async fn flux(&self, git: &GitSource, revert: &str, left: Duration) -> String {
        let namespace = git
            .flux_namespace
            .as_deref()
            .unwrap_or(&self.cluster.namespace);
        let reported = flux::await_revision(
            &self.cluster,
            namespace,
            &git.uri,
            git.pushed_branch(),
            revert,
            left,
            &self.abort,
        )
        .await;
        match reported {
            Ok(flux::Reported::Applied(clauses)) => format!("; Flux reports {}", comma(clauses)),
            Ok(flux::Reported::Skipped(why)) => {
                eprintln!("{why}");
                String::new()
            }
            Err(pending) => format!(
                "; but Flux has not taken the revert within params.restore_timeout ({pending}) and may still apply the deploy commit; look at the agent: {AGENT_STATUS}"
            ),
        }
    }

    async fn wait(&self, image: &str) -> Result<Vec<String>, Failed> {
        eprintln!(
            "waiting for the agent to apply {image} to {} in namespace {}",
            comma(self.workloads.iter().map(|(w, _)| w)),
            self.cluster.namespace
        );
        self.wait_for(image, false).await
    }

    /// The put failed: push a revert of our commit (when there is one and rollback is on) and
    /// wait for the agent to bring the previous images back.
    async fn fail(
        &self,
        failed: Failed,
        image: &str,
        repo: Repo,
        commit: Option<Oid>,
        params: &OutParams,
        git: &GitSource,
    ) -> Error {
        let failure = match (failed.never_applied, commit) {
            (true, Some(commit)) => format!(
                "the agent did not apply {commit} within {} ({})",
                humantime::format_duration(self.timeouts[0]),
                failed.line
            ),
            _ => failed.line,
        };
        let Some(commit) = commit else {
            return Error::DeployFailed(format!(
                "{failure}; this put pushed nothing, so there is nothing to revert"
            ));
        };
        if !params.rollback_on_failure.unwrap_or(true) {
            return Error::DeployFailed(format!(
                "{failure}; left as is (rollback_on_failure: false): {commit} stays on {}",
                git.pushed_branch()
            ));
        }
        // An abort (SIGTERM, SIGINT) still reverts — Concourse kills the process 10 s later, and a
        // commit of a put that was stopped must not stay deployed — but waits for nothing more.
        let aborted = self.abort.received();
        eprintln!("reverting {commit} on {}", git.pushed_branch());
        let reverted = blocking({
            let git = git.clone();
            let why = match aborted {
                Some(_) => "The put was aborted",
                None => "The rollout failed",
            };
            let message = format!("revert {commit}\n\n{why}: {failure}\n");
            move || {
                let author = signature(&git)?;
                push_with_retry(&repo, |tip| repo.revert(commit, tip, &message, &author))
            }
        })
        .await;
        // `None`: the commit was already reverted by someone else; nothing was pushed.
        let pushed = match reverted {
            Ok(pushed) => pushed.map(|oid| oid.to_string()),
            Err(e) => return Error::DeployFailed(format!("{failure}; REVERT FAILED: {e}")),
        };
        let revert = pushed
            .clone()
            .unwrap_or_else(|| "nothing (already reverted)".into());
        let reverted = format!("reverted {commit} on {} with {revert}", git.pushed_branch());
        if let Some(signal) = self.abort.received() {
            return Error::DeployFailed(format!(
                "{failure}; {reverted} (the agent's rollout of it not awaited: aborted by {signal})"
            ));
        }
        eprintln!(
            "pushed revert {revert}; waiting for the agent to bring the previous images back"
        );
        let back = comma(self.workloads.iter().map(|(w, o)| {
            format!(
                "{w} {}",
                comma(o.images.iter().map(|(c, i)| format!("{c}={i}")))
            )
        }));
        // Nothing new ever ran: the revert only keeps the agent from applying the commit later.
        // Unless the agent applied it in the moment between the timeout and the revert: then the
        // images are awaited back as after any failed rollout.
        let never_ran = failed.never_applied && !self.runs_now(image).await;
        let outcome = if never_ran {
            format!("the cluster never ran {image} ({back}); look at the agent: {AGENT_STATUS}")
        } else {
            format!("back on {back}")
        };
        let restore_started = Instant::now();
        match self.wait_for(image, true).await {
            Ok(_) => {
                let left = self.timeouts[1].saturating_sub(restore_started.elapsed());
                let flux = match &pushed {
                    Some(revert) => self.flux(git, revert, left).await,
                    None => String::new(),
                };
                Error::DeployFailed(format!("{failure}; {reverted}; {outcome}{flux}"))
            }
            // A signal during this wait: the revert is pushed, only its rollout is unverified.
            Err(e) if self.abort.received().is_some() => Error::DeployFailed(format!(
                "{failure}; {reverted} (the agent's rollout of it not awaited: {})",
                e.line
            )),
            Err(e) => Error::DeployFailed(format!(
                "{failure}; {reverted}, but ROLLBACK FAILED: {}",
                e.line
            )),
        }
    }
}
