//! `--tlsa` and `--tlsa-file`: reads the TLSA records in force into one [`RecordSet`] (or says
//! which line is wrong), before any certificate is read; and hands each leaf's presented and
//! chosen chains to [`crate::dane::assess`].

use std::io::Read;
use std::sync::Arc;

use super::analyse::Built;
use super::AppError;
use crate::cert::Certificate;
use crate::chain::Choice;
use crate::cli::DaneArgs;
use crate::dane::record::MAX_FILE_BYTES;
use crate::dane::{Assessment, RecordSet};
use crate::pool::{Id, Pool};

/// The records given, or `None` when neither option was used. `host` is `--host`.
pub(super) fn records(
    args: &DaneArgs,
    host: Option<&str>,
) -> Result<Option<Arc<RecordSet>>, AppError> {
    if args.tlsa.is_empty() && args.tlsa_file.is_empty() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for path in &args.tlsa_file {
        let label = path.display().to_string();
        let file =
            std::fs::File::open(path).map_err(|e| AppError(format!("--tlsa-file {label}: {e}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| AppError(format!("--tlsa-file {label}: {e}")))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(AppError(format!(
                "--tlsa-file {label}: larger than {MAX_FILE_BYTES} bytes; give the TLSA lines only"
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| AppError(format!("--tlsa-file {label}: not UTF-8 text")))?;
        files.push((label, text));
    }
    RecordSet::parse(&args.tlsa, &files, host)
        .map(|set| Some(Arc::new(set)))
        .map_err(|e| AppError(format!("TLSA records: {e}")))
}

/// The leaf's presented chain (leaf first, then the rest of its file in order) and its chosen
/// path, judged against the records in force.
pub(super) fn assess(
    set: &RecordSet,
    pool: &Pool,
    built: &Built,
    choice: &Choice,
    now: i64,
    accept_break: bool,
) -> Assessment {
    let certs = |ids: &[Id]| -> Vec<&Certificate> {
        ids.iter().map(|&id| pool.cert(id).as_ref()).collect()
    };
    let leaf = built.located.cert.as_ref();
    let mut presented = vec![leaf];
    presented.extend(
        certs(&built.presented)
            .into_iter()
            .filter(|c| c.sha256 != leaf.sha256),
    );
    let chains = crate::dane::assess::Chains {
        presented,
        path: certs(&choice.best.ids),
        ends_at_root: choice.best.ends_at_root(pool),
    };
    crate::dane::assess(set, &chains, now, accept_break)
}
