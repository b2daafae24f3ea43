//! Preparing jobs: each file validated, given its key and queued (many in one commit), or its
//! unfinished upload found in the queue, restarted when the file changed since.

use super::*;

impl Session {
    /// Validates a job and puts it in the queue (state `queued`), or finds its unfinished
    /// upload there; a source that changed since restarts that upload.
    pub async fn prepare(&self, job: &Job, progress: &ProgressFn) -> Result<Prepared, UploadError> {
        let mut prepared = self
            .prepare_many(std::slice::from_ref(job), |_| Arc::clone(progress))
            .await;
        prepared.pop().unwrap_or_else(|| {
            Err(UploadError::Queue(QueueError::Commit(
                "the job was not prepared".into(),
            )))
        })
    }

    /// [`Session::prepare`] for many jobs (several validated at once), with every new item
    /// queued in one commit; outcomes come back in the jobs' order.
    pub async fn prepare_many(
        &self,
        jobs: &[Job],
        progress_for: impl Fn(usize) -> ProgressFn,
    ) -> Vec<Result<Prepared, UploadError>> {
        // Built in a loop, not a closure: a closure over `&Job` would make the future lose
        // `Send` for the compiler (a higher-ranked lifetime), and the app spawns it.
        let mut plans = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let progress = progress_for(i);
            plans.push(async move { self.plan(job, &progress).await });
        }
        let planned: Vec<Result<Planned, UploadError>> = stream::iter(plans)
            .buffered(self.profile.concurrency.max(1))
            .collect()
            .await;
        let destination = self.profile.mode.destination();
        let new_items: Vec<NewItem<'_>> = planned
            .iter()
            .filter_map(|p| match p {
                Ok(Planned {
                    checked,
                    item:
                        PlannedItem::New {
                            path,
                            place,
                            fingerprint,
                            modified_ns,
                        },
                }) => Some(NewItem {
                    profile: &self.profile.name,
                    destination: &destination,
                    path,
                    key: &place.key,
                    size: checked.size,
                    content_type: &checked.content_type,
                    modified_ns: *modified_ns,
                    fingerprint,
                    relative_path: place.relative_path.as_deref(),
                    drop_id: place.drop_id.as_deref(),
                }),
                _ => None,
            })
            .collect();
        let mut ids = match self.queue.add_many(&new_items) {
            Ok(ids) => ids.into_iter(),
            Err(e) => {
                let reason = e.to_string();
                return planned
                    .into_iter()
                    .map(|_| Err(UploadError::Queue(QueueError::Commit(reason.clone()))))
                    .collect();
            }
        };
        planned
            .into_iter()
            .map(|p| {
                let Planned { checked, item } = p?;
                let (item_id, place, state) = match item {
                    PlannedItem::Existing { id, place, state } => (id, place, state),
                    PlannedItem::New { place, .. } => {
                        let id = ids.next().ok_or_else(|| {
                            UploadError::Queue(QueueError::Commit("an item was not queued".into()))
                        })?;
                        (id, place, ItemState::Queued)
                    }
                };
                Ok(Prepared {
                    item_id,
                    place,
                    checked,
                    state,
                })
            })
            .collect()
    }

    /// Everything [`Session::prepare`] does except queueing a new item.
    pub(super) async fn plan(
        &self,
        job: &Job,
        progress: &ProgressFn,
    ) -> Result<Planned, UploadError> {
        let checked = validate::check_file(&job.path, &self.profile).await?;
        if checked.size > MAX_SINGLE_PUT && self.destination.multipart.is_none() {
            return Err(ValidationError::OverSinglePutLimit(checked.size).into());
        }
        // Resolved once, by the check: the file a dropped symlink named.
        let abs = checked.path.clone();
        let modified_ns = checked
            .modified
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i64);
        // The sample only guards resuming parts; a single PUT re-reads the whole file anyway.
        let fp = if self.goes_multipart(checked.size) {
            let sampled = checked.clone();
            tokio::task::spawn_blocking(move || fingerprint(&sampled))
                .await
                .map_err(|e| TransferError::Read(e.to_string()))??
        } else {
            String::new()
        };
        let destination = self.profile.mode.destination();
        let item = match self
            .queue
            .unfinished_for(&self.profile.name, &destination, &abs)?
        {
            Some(item) => {
                let facts = SourceFacts {
                    size: checked.size,
                    modified_ns,
                    fingerprint: &fp,
                };
                let changed = facts.differs_from(&item);
                if changed {
                    self.resumer()
                        .restart(&item, facts, RestartReason::SourceChanged, progress)
                        .await?;
                }
                // What a backend assigned goes with it, so a resume lands under the same key
                // (a changed file forgot its ticket: its old object is not this content).
                let assigned = match (&item.ticket, changed) {
                    (Some(ticket), false) => Some(crate::sign::Assigned {
                        key: item.key.clone(),
                        ticket: ticket.clone(),
                    }),
                    _ => None,
                };
                PlannedItem::Existing {
                    id: item.id,
                    place: Placement {
                        key: item.key,
                        relative_path: item.relative_path,
                        drop_id: item.drop_id,
                        assigned,
                    },
                    state: item.state,
                }
            }
            None => {
                let batch = job.batch.unwrap_or_else(KeyContext::now_random);
                PlannedItem::New {
                    place: Placement {
                        key: key::build_key_in(
                            &self.profile.prefix,
                            &self.profile.key_template,
                            &job.dirs,
                            &checked.file_name,
                            batch,
                        )?,
                        relative_path: job.relative_path(&checked.file_name),
                        // A lone file is a drop of one: a backend gives it the same key each
                        // time it is asked (a create asked again supersedes the first).
                        drop_id: Some(batch.uuid.to_string()),
                        assigned: None,
                    },
                    path: abs,
                    fingerprint: fp,
                    modified_ns,
                }
            }
        };
        Ok(Planned { checked, item })
    }
}
