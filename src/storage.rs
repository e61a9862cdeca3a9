//! Reading landing areas and reference files from a local folder or an object-store URL
//! (`s3://bucket/prefix`, credentials and endpoint from the usual `AWS_*` variables).

use std::sync::Arc;

use chrono::NaiveDate;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::error::{Error, Result};

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

/// A folder of dropped files.
pub struct Area {
    display: String,
    store: Arc<dyn ObjectStore>,
    root: StorePath,
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
    pub fn open(location: &str) -> Result<Area> {
        let url = to_url(location)?;
        let display = location.trim_end_matches('/').to_string();
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| Error::Usage(format!("'{location}' is not a local path")))?;
            if !path.is_dir() {
                return Err(Error::io(location, std::io::Error::new(std::io::ErrorKind::NotFound, "landing folder does not exist")));
            }
            let store = object_store::local::LocalFileSystem::new_with_prefix(&path).map_err(|e| Error::ObjectStore { path: display.clone(), source: e })?;
            return Ok(Area { display, store: Arc::new(store), root: StorePath::default() });
        }
        let (store, root) = object_store::parse_url_opts(&url, storage_options())
            .map_err(|e| Error::ObjectStore { path: display.clone(), source: e })?;
        Ok(Area { display, store: Arc::from(store), root })
    }

    /// Every file below the root, sorted by path, so runs are deterministic.
    pub async fn list(&self) -> Result<Vec<DroppedFile>> {
        let metas: Vec<_> = self
            .store
            .list(Some(&self.root))
            .try_collect()
            .await
            .map_err(|e| Error::ObjectStore { path: self.display.clone(), source: e })?;
        let prefix = self.root.as_ref();
        let mut files: Vec<DroppedFile> = metas
            .into_iter()
            .filter_map(|m| {
                let full = m.location.as_ref().to_string();
                let relative = full.strip_prefix(prefix).unwrap_or(&full).trim_start_matches('/').to_string();
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

    pub async fn read(&self, file: &DroppedFile) -> Result<bytes::Bytes> {
        let result = self.store.get(&file.location).await.map_err(|e| Error::ObjectStore { path: file.display.clone(), source: e })?;
        result.bytes().await.map_err(|e| Error::ObjectStore { path: file.display.clone(), source: e })
    }
}

/// Reads one whole file (a reference file) from a path or URL.
pub async fn read_file(location: &str) -> Result<Vec<u8>> {
    if !location.contains("://") {
        return std::fs::read(location).map_err(|e| Error::io(location, e));
    }
    let url = to_url(location)?;
    let (store, path) = object_store::parse_url_opts(&url, storage_options())
        .map_err(|e| Error::ObjectStore { path: location.to_string(), source: e })?;
    let result = store.get(&path).await.map_err(|e| Error::ObjectStore { path: location.to_string(), source: e })?;
    Ok(result.bytes().await.map_err(|e| Error::ObjectStore { path: location.to_string(), source: e })?.to_vec())
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
}
