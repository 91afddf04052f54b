//! The classifier model between the store and the scanner: loaded at start,
//! reloaded when `portcullis train` saves a new one (the gateway polls the
//! store's timestamp, so a train run takes effect within seconds without a
//! restart), and learned into by `portcullis train`.

use anyhow::{Context, Result};
use portcullis_classifier::Model;
use portcullis_scan::Scanner;
use portcullis_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// The store's name for the content classifier's model.
pub const NAME: &str = portcullis_classifier::STORE_NAME;

/// The stored model, if one was trained.
pub fn load(store: &Store) -> Result<Option<(Model, i64)>> {
    let Some((bytes, at)) = store.load_model(NAME)? else {
        return Ok(None);
    };
    let model = Model::from_bytes(&bytes).context("the stored classifier model")?;
    Ok(Some((model, at)))
}

/// Keeps the scanner's model in step with the store until the process ends.
pub async fn follow(store: Store, scanner: Arc<Scanner>, mut loaded_at: Option<i64>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let s = store.clone();
        let latest = tokio::task::spawn_blocking(move || s.model_updated_at(NAME)).await;
        let latest = match latest {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot check the classifier model; keeping the current one");
                continue;
            }
            Err(_) => continue,
        };
        if latest == loaded_at {
            continue;
        }
        let s = store.clone();
        match tokio::task::spawn_blocking(move || load(&s)).await {
            Ok(Ok(Some((model, at)))) => {
                let (spam, ham) = model.learned();
                scanner.set_model(Some(Arc::new(model)));
                loaded_at = Some(at);
                tracing::info!(spam, ham, "classifier model reloaded");
            }
            Ok(Ok(None)) => {
                scanner.set_model(None);
                loaded_at = None;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the stored classifier model cannot be read; keeping the current one");
                loaded_at = latest;
            }
            Err(_) => {}
        }
    }
}
