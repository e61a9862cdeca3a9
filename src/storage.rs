//! Reading landing areas and reference files from a local folder or an object-store URL
//! (`s3://bucket/prefix`, credentials and endpoint from the usual `AWS_*` variables).

use std::sync::Arc;

use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::config::RetryPolicy;
use crate::error::{Error, Result};
use crate::retry::with_retry;

/// A local path or URL turned into a URL (local paths made absolute).
pub fn to_url(location: &str) -> Result<Url> {
    if location.contains("://") {
        return Url::parse(location).map_err(|e| Error::Usage(format!("'{location}' is not a valid URL: {e}")));
    }
    let path = std::path::absolute(location).map_err(|e| Error::io(location, e))?;
    Url::from_directory_path(&path).map_err(|()| Error::Usage(format!("'{location}' is not a usable path")))
}

/// Object-store options from the environment, for URLs that need them (S3 endpoint, keys).
pub fn storage_options() -> Vec<(String, String)> {
    std::env::vars().filter(|(k, _)| k.starts_with("AWS_")).map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()
}

/// The store and path a URL names. S3 is built here so that its client does not retry on
/// its own for minutes: stocktake's retry policy (backoff with jitter) decides.
fn open_url(url: &Url, options: &[(String, String)], display: &str) -> Result<(Arc<dyn ObjectStore>, StorePath)> {
    let wrap = |e| Error::ObjectStore { path: display.to_string(), source: e };
    if url.scheme() == "s3" {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        let mut builder = AmazonS3Builder::new().with_url(url.as_str());
        for (key, value) in options {
            // The environment holds AWS_* variables object_store has no use for.
            if let Ok(key) = key.parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value);
            }
        }
        let retry = object_store::RetryConfig { max_retries: 0, ..Default::default() };
        let store = builder.with_retry(retry).build().map_err(wrap)?;
        let path = StorePath::from_url_path(url.path()).map_err(|e| wrap(e.into()))?;
        return Ok((Arc::new(store), path));
    }
    let (store, path) = object_store::parse_url_opts(url, options.iter().cloned()).map_err(wrap)?;
    Ok((Arc::from(store), path))
}

/// A folder of dropped files.
pub struct Area {
    display: String,
    store: Arc<dyn ObjectStore>,
    root: StorePath,
    retry: RetryPolicy,
}

/// One dropped file.
#[derive(Debug, Clone)]
pub struct DroppedFile {
    /// Path below the area's root, `/`-separated.
    pub relative: String,
    /// How errors and `source_file` name it: the area as configured plus `relative`.
    pub display: String,
    /// The first `YYYY-MM-DD` in `relative`: the snapshot or load date.
    pub date: Option<NaiveDate>,
    location: StorePath,
}

impl DroppedFile {
    /// File name without directory or extension.
    pub fn stem(&self) -> &str {
        let name = self.relative.rsplit('/').next().unwrap_or(&self.relative);
        name.split_once('.').map(|(s, _)| s).unwrap_or(name)
    }
}

impl Area {
    pub fn open(location: &str, options: &[(String, String)], retry: &RetryPolicy) -> Result<Area> {
        let retry = retry.clone();
        let url = to_url(location)?;
        let display = location.trim_end_matches('/').to_string();
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| Error::Usage(format!("'{location}' is not a local path")))?;
            if !path.is_dir() {
                return Err(Error::io(location, std::io::Error::new(std::io::ErrorKind::NotFound, "landing folder does not exist")));
            }
            let store = object_store::local::LocalFileSystem::new_with_prefix(&path).map_err(|e| Error::ObjectStore { path: display.clone(), source: e })?;
            return Ok(Area { display, store: Arc::new(store), root: StorePath::default(), retry });
        }
        let (store, root) = open_url(&url, options, &display)?;
        Ok(Area { display, store, root, retry })
    }

    /// Every file below the root, sorted by path, so runs are deterministic.
    pub async fn list(&self) -> Result<Vec<DroppedFile>> {
        self.list_day(None).await
    }

    /// The files of `day` (every file when `None`), sorted by path. A folder whose path
    /// carries another date is not walked: an area gains a folder a day, and listing them all
    /// made each daily run list (and, locally, stat) one more day's files than the last.
    pub async fn list_day(&self, day: Option<NaiveDate>) -> Result<Vec<DroppedFile>> {
        let mut metas = vec![];
        let mut folders = vec![self.root.clone()];
        while let Some(folder) = folders.pop() {
            if day.is_none() || self.relative(&folder).is_some_and(|r| date_in(r).is_some()) {
                metas.extend(self.list_below(&folder, false).await?.objects);
                continue;
            }
            let listed = self.list_below(&folder, true).await?;
            metas.extend(listed.objects);
            // Files below a dated folder take its date: only `day`'s folders are walked.
            folders.extend(listed.common_prefixes.into_iter().filter(|f| self.relative(f).and_then(date_in).is_none_or(|d| Some(d) == day)));
        }
        let mut files: Vec<DroppedFile> = metas
            .into_iter()
            .filter_map(|m| {
                let relative = self.relative(&m.location)?.to_string();
                // Hidden files (editor swap files, .DS_Store) are not exports.
                if relative.split('/').any(|part| part.starts_with('.')) {
                    return None;
                }
                Some(DroppedFile {
                    display: format!("{}/{}", self.display, relative),
                    date: date_in(&relative),
                    relative,
                    location: m.location,
                })
            })
            .collect();
        files.sort_by(|a, b| a.relative.cmp(&b.relative));
        Ok(files)
    }

    /// A location's path below the root (`None` for the root itself).
    fn relative<'p>(&self, location: &'p StorePath) -> Option<&'p str> {
        let full: &str = location.as_ref();
        let relative = full.strip_prefix(self.root.as_ref()).unwrap_or(full).trim_start_matches('/');
        (!relative.is_empty()).then_some(relative)
    }

    /// Everything below `folder` (`one_level`: its files and subfolders only).
    async fn list_below(&self, folder: &StorePath, one_level: bool) -> Result<object_store::ListResult> {
        with_retry(&self.retry, &format!("listing {}", self.display), || async {
            let wrap = |e| Error::ObjectStore { path: self.display.clone(), source: e };
            if one_level {
                return self.store.list_with_delimiter(Some(folder)).await.map_err(wrap);
            }
            let objects = self.store.list(Some(folder)).try_collect().await.map_err(wrap)?;
            Ok(object_store::ListResult { common_prefixes: vec![], objects })
        })
        .await
    }

    pub async fn read(&self, file: &DroppedFile) -> Result<bytes::Bytes> {
        let wrap = |e| Error::ObjectStore { path: file.display.clone(), source: e };
        with_retry(&self.retry, &format!("reading {}", file.display), || async {
            self.store.get(&file.location).await.map_err(wrap)?.bytes().await.map_err(wrap)
        })
        .await
    }
}

/// Reads one whole file (a reference file) from a path or URL.
pub async fn read_file(location: &str, options: &[(String, String)], retry: &RetryPolicy) -> Result<Vec<u8>> {
    if !location.contains("://") {
        return std::fs::read(location).map_err(|e| Error::io(location, e));
    }
    let url = to_url(location)?;
    let (store, path) = open_url(&url, options, location)?;
    let wrap = |e| Error::ObjectStore { path: location.to_string(), source: e };
    let bytes = with_retry(retry, &format!("reading {location}"), || async { store.get(&path).await.map_err(wrap)?.bytes().await.map_err(wrap) }).await?;
    Ok(bytes.to_vec())
}

/// Writes one whole file to a path or URL (uploading a landing area to an object store).
pub async fn write_file(location: &str, options: &[(String, String)], bytes: Vec<u8>) -> Result<()> {
    if !location.contains("://") {
        if let Some(parent) = std::path::Path::new(location).parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent.display(), e))?;
        }
        return std::fs::write(location, bytes).map_err(|e| Error::io(location, e));
    }
    let url = to_url(location)?;
    let (store, path) = open_url(&url, options, location)?;
    store.put(&path, bytes.into()).await.map_err(|e| Error::ObjectStore { path: location.to_string(), source: e })?;
    Ok(())
}

/// The first `YYYY-MM-DD` in a path.
pub fn date_in(path: &str) -> Option<NaiveDate> {
    let bytes = path.as_bytes();
    (0..bytes.len().saturating_sub(9)).find_map(|i| {
        let candidate = &path[i..i + 10];
        let shaped = candidate.bytes().enumerate().all(|(j, b)| if j == 4 || j == 7 { b == b'-' } else { b.is_ascii_digit() });
        if shaped { NaiveDate::parse_from_str(candidate, "%Y-%m-%d").ok() } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_comes_from_folder_or_file_name() {
        assert_eq!(date_in("2026-07-01/pos.csv").unwrap().to_string(), "2026-07-01");
        assert_eq!(date_in("x/inventory_2026-10-31T0600.csv").unwrap().to_string(), "2026-10-31");
        assert_eq!(date_in("2026-13-01/pos.csv"), None);
        assert_eq!(date_in("pos.csv"), None);
    }

    #[tokio::test]
    async fn a_days_listing_walks_only_that_days_folders() {
        let dir = std::env::temp_dir().join(format!("stocktake-list-{}", std::process::id()));
        let files = ["2026-10-30/pos.csv", "2026-10-31/pos.csv", "2026-10-31/late/pos.csv", "inbox/pos_2026-10-31.csv", "inbox/pos_2026-10-30.csv", "x_2026-10-31.csv", "undated.csv", "2026-10-31/.swp"];
        for f in files {
            std::fs::create_dir_all(dir.join(f).parent().unwrap()).unwrap();
            std::fs::write(dir.join(f), "sku\n").unwrap();
        }
        let area = Area::open(dir.to_str().unwrap(), &[], &RetryPolicy::default()).unwrap();
        let names = |files: Vec<DroppedFile>| files.into_iter().map(|f| f.relative).collect::<Vec<_>>();
        let day = NaiveDate::from_ymd_opt(2026, 10, 31);
        let all = area.list().await.unwrap();
        let of_day: Vec<DroppedFile> = all.iter().filter(|f| f.date == day).cloned().collect();
        assert_eq!(names(area.list_day(day).await.unwrap().into_iter().filter(|f| f.date == day).collect()), names(of_day));
        let listed = names(area.list_day(day).await.unwrap());
        assert_eq!(listed, vec!["2026-10-31/late/pos.csv", "2026-10-31/pos.csv", "inbox/pos_2026-10-30.csv", "inbox/pos_2026-10-31.csv", "undated.csv", "x_2026-10-31.csv"]);
        assert_eq!(all.len(), 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
