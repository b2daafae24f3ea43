//! Jobs: the files to upload, found in what was dropped (a folder keeps its structure and gets
//! one drop id, recorded before its files are queued), and the jobs a crash left unfinished.

use super::*;

/// One file to upload: where it is, and the folders it sits in below what was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The file.
    pub path: PathBuf,
    /// Folder names between the dropped folder (included) and the file, kept in the key.
    pub dirs: Vec<String>,
    /// What the files of one dropped folder share in their keys (`{uuid}` and the date), so
    /// the folder lands whole under one id; `None` for a lone file (its own).
    pub batch: Option<KeyContext>,
}

impl Job {
    /// The file's path inside the dropped folder (`Photos/2026/beach.jpg`), named `file_name`;
    /// `None` for a lone file.
    pub fn relative_path(&self, file_name: &str) -> Option<String> {
        if self.dirs.is_empty() {
            return None;
        }
        let mut path = self.dirs.join("/");
        path.push('/');
        path.push_str(file_name);
        Some(path)
    }

    /// A lone file (no folder above it kept in the key).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            dirs: Vec::new(),
            batch: None,
        }
    }
}

/// Expands folders into their files (recursively, keeping the folder structure); files and
/// paths that do not exist pass through, to be reported by validation.
pub fn expand(paths: &[PathBuf]) -> Vec<Job> {
    expand_with(paths, |_| {
        Ok::<_, std::convert::Infallible>(KeyContext::now_random())
    })
    .unwrap_or_default()
}

/// [`expand`], each folder's id and date given by `drop_of(its canonical path)`.
fn expand_with<E>(
    paths: &[PathBuf],
    mut drop_of: impl FnMut(&Path) -> Result<KeyContext, E>,
) -> Result<Vec<Job>, E> {
    let mut jobs = Vec::new();
    for p in paths {
        if !p.is_dir() {
            jobs.push(Job::file(p.clone()));
            continue;
        }
        let root = p.canonicalize().unwrap_or_else(|_| p.clone());
        let top = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "folder".into());
        // Regression (issue #16: a dropped folder was scattered, each file under its own id).
        let batch = drop_of(&root)?;
        let mut files: Vec<_> = walkdir::WalkDir::new(p)
            .follow_links(false)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .collect();
        files.sort_by(|a, b| a.path().cmp(b.path()));
        for e in files {
            let rel = e.path().strip_prefix(p).unwrap_or(e.path());
            let mut dirs = vec![top.clone()];
            if let Some(parent) = rel.parent() {
                dirs.extend(parent.iter().map(|c| c.to_string_lossy().into_owned()));
            }
            jobs.push(Job {
                path: e.path().to_path_buf(),
                dirs,
                batch: Some(batch),
            });
        }
    }
    Ok(jobs)
}

impl Session {
    /// The jobs of this profile's unfinished uploads (to resume after a crash or a pause),
    /// and of the folders dropped but not queued whole (killed while queueing them).
    pub fn unfinished_jobs(&self) -> Result<Vec<Job>, QueueError> {
        let mut jobs: Vec<Job> = self
            .queue
            .unfinished(&self.profile.name, &self.profile.mode.destination())?
            .into_iter()
            .map(|i| Job::file(i.path))
            .collect();
        let roots: Vec<PathBuf> = self
            .queue
            .incomplete_drops(&self.profile.name)?
            .into_iter()
            .map(|d| d.root)
            .filter(|r| r.is_dir())
            .collect();
        // The drops' files not queued yet (`expand` leaves out those that were).
        jobs.extend(self.expand(&roots)?);
        Ok(jobs)
    }

    /// [`expand`] for this profile, each dropped folder recorded first: a run killed before
    /// the folder was queued whole finds it again — the same id for all its files — when the
    /// folder is given again, or when unfinished uploads resume ([`Self::unfinished_jobs`]).
    /// Once its files are queued, [`Self::upload_jobs_each`] marks it so.
    pub fn expand(&self, paths: &[PathBuf]) -> Result<Vec<Job>, QueueError> {
        // Files a reused drop already queued (done, failed, paused or waiting) are not queued
        // again: they go on as they are, or stay as they ended.
        let mut queued_before = std::collections::HashSet::new();
        let jobs = expand_with(paths, |root| -> Result<KeyContext, QueueError> {
            if let Some(d) = self.queue.open_drop(&self.profile.name, root)? {
                if let Ok(uuid) = uuid::Uuid::parse_str(&d.drop_id) {
                    let now = time::OffsetDateTime::from_unix_timestamp(d.created_unix)
                        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
                    queued_before.extend(self.queue.drop_paths(&d.drop_id)?);
                    return Ok(KeyContext { now, uuid });
                }
            }
            let ctx = KeyContext::now_random();
            self.queue.record_drop(
                &self.profile.name,
                &crate::queue::DropRecord {
                    drop_id: ctx.uuid.to_string(),
                    root: root.to_path_buf(),
                    created_unix: ctx.now.unix_timestamp(),
                },
            )?;
            Ok(ctx)
        })?;
        Ok(jobs
            .into_iter()
            .filter(|j| {
                queued_before.is_empty()
                    || !j
                        .path
                        .canonicalize()
                        .is_ok_and(|p| queued_before.contains(&p))
            })
            .collect())
    }

    /// Every file of the drops of `jobs` is in the queue now.
    pub fn drops_queued(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let ids: std::collections::BTreeSet<String> = jobs
            .iter()
            .filter_map(|j| j.batch.map(|b| b.uuid.to_string()))
            .collect();
        for id in ids {
            self.queue.drop_queued(&id)?;
        }
        Ok(())
    }
}
