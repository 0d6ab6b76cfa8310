//! Which tags a source follows, and the versions they stand for now: one tag (`tag`, the
//! default), the highest semver tag (`semver_constraint`, `variant`, `pre_releases`,
//! `pre_release_prefixes`), or the last tag a regular expression matches (`tag_regex`), with
//! registry-image-resource's keys and meanings. `check` reports these versions; a put without a
//! `get` step deploys the current one.
//!
//! [`select`] reads the keys and ranks tags, [`semver`] is Masterminds/semver's grammar.

pub mod select;
pub mod semver;

use crate::config::{Digest, Source, Version};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::registry::tag::current_digest;
use select::{Candidate, Policy};

/// How many listed candidates, newest first, may turn out to have no manifest (deleted between
/// the listing and the HEAD) before the check gives up rather than walk the whole list.
const MISSING_AT_MOST: usize = 10;

/// The versions to record, oldest first, given the one Concourse has (if any).
///
/// Following one tag (registry-image-resource's semantics):
/// - no version given: `[current]`; the tag does not exist: `[]`;
/// - the given version is current: `[current]`;
/// - otherwise `[given, current]` while the given digest still exists, else `[current]`.
///
/// Following a policy: `[newest]`, or `[given, newest]` while the given tag is an older
/// candidate still at its digest; tags in between are not reported (one request each, and
/// Concourse deploys the newest). Tags are listed once; only the newest and the given tag are
/// resolved.
pub async fn versions(
    registry: &Registry,
    source: &Source,
    given: Option<Version>,
) -> Result<Vec<Version>> {
    follow(registry, source, &Policy::of(source)?, given).await
}

/// The version the source's policy points at now: what a put deploys when no `get` step or
/// `params.digest` names one.
pub async fn current(registry: &Registry, source: &Source) -> Result<Version> {
    let policy = Policy::of(source)?;
    follow(registry, source, &policy, None)
        .await?
        .pop()
        .ok_or_else(|| Error::Config {
            key: policy.key(),
            message: format!("{} has no {}", source.repository, policy.describe()),
        })
}

async fn follow(
    registry: &Registry,
    source: &Source,
    policy: &Policy,
    given: Option<Version>,
) -> Result<Vec<Version>> {
    match policy {
        Policy::Tag(tag) => follow_tag(registry, source, tag, given).await,
        policy => follow_policy(registry, source, policy, given).await,
    }
}

async fn follow_tag(
    registry: &Registry,
    source: &Source,
    tag: &str,
    given: Option<Version>,
) -> Result<Vec<Version>> {
    let Some(current) = current_digest(registry, source, tag).await? else {
        eprintln!(
            "tag {tag} does not exist in {}; no versions yet",
            source.repository
        );
        return Ok(vec![]);
    };
    let mut versions = Vec::with_capacity(2);
    if let Some(given) = given
        && given.digest != current
        && registry
            .manifest_digest(&given.digest.to_string())
            .await?
            .is_some()
    {
        versions.push(Version {
            tag: Some(given.tag.unwrap_or_else(|| tag.to_string())),
            ..given
        });
    }
    versions.push(Version {
        digest: current,
        tag: Some(tag.to_string()),
    });
    Ok(versions)
}

async fn follow_policy(
    registry: &Registry,
    source: &Source,
    policy: &Policy,
    given: Option<Version>,
) -> Result<Vec<Version>> {
    let Some(listed) = registry.tags().await? else {
        eprintln!("{} does not exist yet; no versions yet", source.repository);
        return Ok(vec![]);
    };
    let candidates = policy.candidates(&listed);
    eprintln!(
        "{} tags listed, {} of them {}",
        listed.len(),
        candidates.len(),
        policy.describe()
    );
    let Some((top, digest)) = newest(registry, source, policy, &candidates).await? else {
        eprintln!(
            "no tag of {} is one of the {}; no versions yet",
            source.repository,
            policy.describe()
        );
        return Ok(vec![]);
    };
    let newest = Version {
        digest,
        tag: Some(top.tag.clone()),
    };
    // Concourse's cursor counts while its tag is still a candidate at the digest it had.
    let cursor = given.and_then(|given| {
        let tag = given.tag.as_deref()?;
        Some((candidates.iter().find(|c| c.tag == tag)?, given))
    });
    let Some((cursor, given)) = cursor else {
        return Ok(vec![newest]);
    };
    let unchanged = if cursor.tag == top.tag {
        newest.digest == given.digest
    } else {
        resolve(registry, source, cursor).await?.as_ref() == Some(&given.digest)
    };
    if !unchanged {
        return Ok(vec![newest]);
    }
    // The cursor is the newest, or another spelling of it (`1.2` for `1.2.0`).
    if !top.newer_than(cursor) {
        return Ok(vec![given]);
    }
    // Two tags of one digest are one version: registry-image-resource keeps the release, else
    // the more specific tag, else the one it met first (Concourse's).
    if newest.digest == given.digest {
        let kept = if cursor.preferred_over(top) {
            given
        } else {
            newest
        };
        return Ok(vec![kept]);
    }
    Ok(vec![given, newest])
}

/// The newest candidate that resolves, with its digest; a listed tag may have been deleted
/// since, so a few are tried before giving up.
async fn newest<'a>(
    registry: &Registry,
    source: &Source,
    policy: &Policy,
    candidates: &'a [Candidate],
) -> Result<Option<(&'a Candidate, Digest)>> {
    for candidate in candidates.iter().rev().take(MISSING_AT_MOST) {
        if let Some(digest) = resolve(registry, source, candidate).await? {
            return Ok(Some((candidate, digest)));
        }
    }
    if candidates.len() <= MISSING_AT_MOST {
        return Ok(None);
    }
    Err(Error::InvalidResponse {
        server: registry.name().host.clone(),
        what: "tags list".into(),
        message: format!(
            "the {MISSING_AT_MOST} newest of the {} are listed but have no manifest",
            policy.describe()
        ),
    })
}

async fn resolve(
    registry: &Registry,
    source: &Source,
    candidate: &Candidate,
) -> Result<Option<Digest>> {
    current_digest(registry, source, &candidate.tag).await
}
