//! `cox cache list|show|delete|prune`: the step cache of memoized templates, in the local
//! store (see `cox_scheduler::cache`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use cox_scheduler::cache::{CacheEntry, EntryKey, StepCache};
use cox_scheduler::store::Store;

/// How long to wait for another `cox` to release the store.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// `cox cache ...`.
#[derive(Subcommand)]
pub enum CacheCommand {
    /// List the entries: namespace, cache, key, node, when stored and last used.
    List(Filter),
    /// Print one entry's outcome as JSON.
    Show(KeyArgs),
    /// Delete one entry, or with --all every entry the filter selects.
    Delete(DeleteArgs),
    /// Delete the entries stored longer ago than a duration (e.g. 7d, 12h).
    Prune(PruneArgs),
}

/// Which entries.
#[derive(Args)]
pub struct Filter {
    /// Only this namespace.
    #[arg(short, long)]
    namespace: Option<String>,
    /// Only this cache (`memoize.cache.configMap.name`).
    #[arg(long)]
    cache: Option<String>,
}

impl Filter {
    fn accepts(&self, key: &EntryKey) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == key.namespace)
            && self.cache.as_ref().is_none_or(|c| *c == key.cache)
    }
}

/// One entry.
#[derive(Args)]
pub struct KeyArgs {
    /// The entry's key (`memoize.key`, substituted).
    key: String,
    /// The cache's name.
    #[arg(long)]
    cache: String,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
}

impl KeyArgs {
    fn entry_key(&self) -> EntryKey {
        EntryKey {
            namespace: self.namespace.clone(),
            cache: self.cache.clone(),
            key: self.key.clone(),
        }
    }
}

/// `cox cache delete`.
#[derive(Args)]
pub struct DeleteArgs {
    /// The entry's key; without it, --all is needed.
    key: Option<String>,
    /// Every entry the filter selects.
    #[arg(long, conflicts_with = "key")]
    all: bool,
    #[command(flatten)]
    filter: Filter,
}

/// `cox cache prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// Entries stored longer ago than this go (Argo durations: 30m, 12h, 7d).
    #[arg(long)]
    older_than: String,
    #[command(flatten)]
    filter: Filter,
}

fn open() -> Result<StepCache> {
    let home = cox_scheduler::engine::default_home()?;
    let store = Store::open_waiting(&home.join("store"), LOCK_WAIT)?;
    Ok(StepCache::new(store))
}

/// Runs a `cox cache` subcommand.
pub fn run(command: CacheCommand) -> Result<ExitCode> {
    let cache = open()?;
    match command {
        CacheCommand::List(filter) => list(&cache, &filter),
        CacheCommand::Show(args) => match cache.get(&args.entry_key())? {
            Some(entry) => {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&entry_json(&args.entry_key(), &entry))?
                )?;
                Ok(ExitCode::SUCCESS)
            }
            None => bail!(
                "no cache entry {:?} in cache {}/{}",
                args.key,
                args.namespace,
                args.cache
            ),
        },
        CacheCommand::Delete(args) => {
            let deleted = match (&args.key, args.all) {
                (Some(key), _) => {
                    cache.delete_where(|k, _| args.filter.accepts(k) && k.key == *key)?
                }
                (None, true) => cache.delete_where(|k, _| args.filter.accepts(k))?,
                (None, false) => bail!("give the entry's KEY, or --all"),
            };
            if deleted == 0 && args.key.is_some() {
                bail!("no cache entry {:?}", args.key.unwrap_or_default());
            }
            outln!("{deleted} cache entries deleted")?;
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Prune(args) => {
            let age = cox_config::duration::parse(&args.older_than)
                .map_err(|e| anyhow::anyhow!("--older-than {:?}: {e}", args.older_than))?;
            let now = chrono::Utc::now();
            let deleted = cache.delete_where(|k, entry| {
                args.filter.accepts(k) && !entry.fresh(Some(age.as_secs()), now)
            })?;
            outln!("{deleted} cache entries pruned")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(cache: &StepCache, filter: &Filter) -> Result<ExitCode> {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["NAMESPACE", "CACHE", "KEY", "NODE", "STORED", "LAST HIT"]);
    for (key, entry) in cache.list()? {
        if !filter.accepts(&key) {
            continue;
        }
        table.add_row([
            key.namespace,
            key.cache,
            key.key,
            entry.node_id,
            entry.created_at,
            entry.last_hit_at.unwrap_or_else(|| "-".into()),
        ]);
    }
    outln!("{table}")?;
    Ok(ExitCode::SUCCESS)
}

/// An entry as Argo writes one into its cache ConfigMap, plus where it lives.
fn entry_json(key: &EntryKey, entry: &CacheEntry) -> serde_json::Value {
    let o = &entry.outcome;
    let mut outputs = serde_json::Map::new();
    if !o.parameters.is_empty() {
        outputs.insert(
            "parameters".into(),
            o.parameters
                .iter()
                .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
                .collect(),
        );
    }
    if !o.artifacts.is_empty() {
        outputs.insert(
            "artifacts".into(),
            o.artifacts
                .iter()
                .map(|a| {
                    let mut artifact = serde_json::json!({"name": a.name, "key": a.key, "size": a.size, "sha256": a.sha256});
                    // Where it is when not in the run's repository (Secret names, no keys).
                    if let Some(store) = &a.store {
                        artifact["location"] = serde_json::to_value(store).unwrap_or_default();
                    }
                    artifact
                })
                .collect(),
        );
    }
    if let Some(r) = &o.result {
        outputs.insert("result".into(), r.clone().into());
    }
    if let Some(c) = o.exit_code {
        outputs.insert("exitCode".into(), c.to_string().into());
    }
    serde_json::json!({
        "namespace": key.namespace,
        "cache": key.cache,
        "key": key.key,
        "nodeID": entry.node_id,
        "run": entry.run,
        "outputs": outputs,
        "creationTimestamp": entry.created_at,
        "lastHitTimestamp": entry.last_hit_at,
    })
}
