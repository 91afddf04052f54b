//! Group commit for the spool folder's fsync. A new message file's name is durable
//! only once its folder is fsynced; one folder fsync that *starts* after a file was
//! created covers that file, so concurrent writers share one instead of queueing
//! one each behind the filesystem journal. A writer waits for the first fsync that
//! began after it asked, running it itself when none is in progress.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

pub struct DirSync {
    dir: PathBuf,
    state: Mutex<Generations>,
    done: Condvar,
}

#[derive(Default)]
struct Generations {
    /// fsyncs started so far; the one in progress (if any) has this number.
    started: u64,
    /// The highest finished fsync.
    finished: u64,
    running: bool,
    /// The last failed fsync and its error; its waiters report it.
    failed: Option<(u64, std::io::ErrorKind, String)>,
}

impl DirSync {
    pub fn new(dir: PathBuf) -> DirSync {
        DirSync {
            dir,
            state: Mutex::new(Generations::default()),
            done: Condvar::new(),
        }
    }

    /// Returns once a folder fsync that started after this call has finished.
    pub fn sync(&self) -> std::io::Result<()> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // An fsync already running may have started before our file existed.
        let target = s.started + 1;
        loop {
            if s.finished >= target {
                return match &s.failed {
                    Some((g, kind, msg)) if *g >= target => {
                        Err(std::io::Error::new(*kind, msg.clone()))
                    }
                    _ => Ok(()),
                };
            }
            if !s.running {
                s.running = true;
                s.started += 1;
                let mine = s.started;
                drop(s);
                let result = File::open(&self.dir).and_then(|d| d.sync_all());
                s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.running = false;
                s.finished = mine;
                if let Err(e) = &result {
                    s.failed = Some((mine, e.kind(), e.to_string()));
                }
                self.done.notify_all();
                continue;
            }
            s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_callers_all_return_and_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let sync = Arc::new(DirSync::new(dir.path().to_path_buf()));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let s = sync.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        s.sync().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let g = sync.state.lock().unwrap();
        assert!(!g.running);
        assert!(g.started <= 16 * 20, "never more fsyncs than requests");
        assert_eq!(g.started, g.finished);
    }

    #[test]
    fn a_failed_fsync_is_reported_to_its_waiters() {
        let sync = DirSync::new(PathBuf::from("/nonexistent/portcullis-spool"));
        assert!(sync.sync().is_err());
    }
}
