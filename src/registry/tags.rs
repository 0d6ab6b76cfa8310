//! Listing a repository's tags (`GET /v2/<name>/tags/list`), for the tag policies of `check`:
//! once per check, page by page as the registry links them, bounded in pages and bytes.

use reqwest::Method;
use reqwest::StatusCode;
use reqwest::header::LINK;
use serde::Deserialize;

use super::Registry;
use crate::error::{Error, Result};

/// Tags asked for per page. Distribution serves up to 1000 by default, and go-containerregistry
/// (registry-image-resource) asks for as many: a few hundred tags cost one request for either.
const PAGE: usize = 1000;
/// A page of 1000 tags of at most 128 characters is 131 KiB of JSON; allow some slack.
const MAX_PAGE_BYTES: usize = 1 << 20;
/// 100,000 tags: beyond that a repository needs a cleanup policy, not a longer check.
const MAX_PAGES: usize = 100;

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Registry {
    /// Every tag of the repository in the registry's order, or `None` when the repository does
    /// not exist (yet).
    pub async fn tags(&self) -> Result<Option<Vec<String>>> {
        let what = "tags list";
        let mut tags = Vec::new();
        let mut path = format!("tags/list?n={PAGE}");
        for _ in 0..MAX_PAGES {
            let resp = self
                .request(what, Method::GET, &path, "application/json")
                .await?;
            let status = resp.status();
            if status == StatusCode::NOT_FOUND && tags.is_empty() {
                let detail = super::response::error_detail(resp).await;
                // Distribution's code for a repository that has no tags pushed yet.
                if detail.starts_with(": NAME_UNKNOWN") {
                    return Ok(None);
                }
                return Err(Error::Status {
                    server: self.name.host.clone(),
                    what: what.into(),
                    status: 404,
                    detail: format!(
                        "{detail} (this registry does not serve the tags API for the repository; follow one tag with source.tag instead)"
                    ),
                });
            }
            if !status.is_success() {
                return Err(self.status_error(what, resp).await);
            }
            let next = resp
                .headers()
                .get(LINK)
                .map(|link| self.next_page(link.to_str().unwrap_or_default()))
                .transpose()?
                .flatten();
            let body = self.body(what, resp, MAX_PAGE_BYTES).await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| self.invalid(what, format!("not a tags list: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => path = next,
                None => return Ok(Some(tags)),
            }
        }
        Err(self.invalid(
            what,
            format!("more than {MAX_PAGES} pages of {PAGE} tags; delete old tags or follow one tag with source.tag"),
        ))
    }

    /// The path (below this repository) of the page a `Link: <…>; rel="next"` header names. A
    /// link elsewhere is refused: the credentials of this repository go to this repository only.
    fn next_page(&self, link: &str) -> Result<Option<String>> {
        let Some(target) = link
            .split(',')
            .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
            .and_then(|part| part.trim().strip_prefix('<'))
            .and_then(|part| part.split_once('>'))
            .map(|(target, _)| target)
        else {
            return Ok(None);
        };
        let origin = self
            .base
            .split_once("/v2/")
            .map_or("", |(origin, _)| origin);
        let relative = target.strip_prefix(origin).unwrap_or(target);
        let prefix = format!("/v2/{}/", self.name.path);
        relative
            .strip_prefix(&prefix)
            .filter(|rest| rest.starts_with("tags/list"))
            .map(|rest| Some(rest.to_string()))
            .ok_or_else(|| {
                self.invalid(
                    "tags list",
                    format!(
                        "its next page is not this repository's tags list: {}",
                        crate::error::quote(target)
                    ),
                )
            })
    }
}
