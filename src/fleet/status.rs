//! `fleet status`: one row per pair, read from the run ConfigMaps in the management cluster.
//! Pairs whose pod has not written yet show as `pending`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde_json::Value;

use super::file::Fleet;
use super::management::Access;
use super::render::FLEET_LABEL;
use crate::error::{Error, Result};

/// One pair's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub pair: String,
    pub wave: String,
    pub index: usize,
    /// The last step the journal recorded (`number title`).
    pub step: Option<String>,
    /// The last traffic weight a shift checked.
    pub weight: Option<u64>,
    /// That check's verdict (`pass`, `fail`, …).
    pub verdict: Option<String>,
    /// `pending` (no journal yet), `running`, `succeeded`, `failed`, `interrupted`.
    pub outcome: String,
    pub run_id: Option<String>,
    /// Seconds since the run started.
    pub age_seconds: Option<i64>,
}

/// The last object in `value` holding both `weight` and `verdict` (a shift's step check).
fn last_check(value: &Value) -> Option<(u64, String)> {
    match value {
        Value::Object(fields) => {
            let nested = fields.values().filter_map(last_check).next_back();
            let own = match (fields.get("weight"), fields.get("verdict")) {
                (Some(w), Some(v)) => Some((w.as_u64()?, v.as_str()?.to_string())),
                _ => None,
            };
            nested.or(own)
        }
        Value::Array(items) => items.iter().filter_map(last_check).next_back(),
        _ => None,
    }
}

/// The rows of `fleet`, given its run ConfigMaps' data keyed by pair name (pure).
pub fn rows(
    fleet: &Fleet,
    journals: &BTreeMap<String, BTreeMap<String, String>>,
    now: jiff::Timestamp,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for wave in &fleet.waves {
        for (index, pair) in wave.pairs.iter().enumerate() {
            let data = journals.get(&pair.name);
            let journal: Option<Value> = data
                .and_then(|d| d.get("journal.json"))
                .and_then(|t| serde_json::from_str(t).ok());
            let mut row = Row {
                pair: pair.name.clone(),
                wave: wave.name.clone(),
                index,
                step: None,
                weight: None,
                verdict: None,
                outcome: "pending".into(),
                run_id: data.and_then(|d| d.get("run-id").cloned()),
                age_seconds: None,
            };
            if let Some(journal) = journal {
                let last = journal["steps"].as_array().and_then(|s| s.last());
                row.step = last.map(|s| {
                    format!(
                        "{} {}",
                        s["number"],
                        s["title"].as_str().unwrap_or_default()
                    )
                });
                if let Some((weight, verdict)) = last_check(&journal["steps"]) {
                    row.weight = Some(weight);
                    row.verdict = Some(verdict);
                }
                row.outcome = journal["outcome"].as_str().unwrap_or("unknown").to_string();
                row.age_seconds = journal["started"]
                    .as_str()
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .map(|t| now.duration_since(t).as_secs());
            }
            rows.push(row);
        }
    }
    rows
}

fn age(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) => format!("{}h", s / 3600),
    }
}

/// The rows as a table.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<20} {:<12} {:>5}  {:<40} {:>6}  {:<8} {:<12} {:>5}\n",
        "PAIR", "WAVE", "INDEX", "STEP", "WEIGHT", "VERDICT", "OUTCOME", "AGE"
    );
    for row in rows {
        let mut step = row.step.clone().unwrap_or_else(|| "-".into());
        if step.chars().count() > 40 {
            step = step.chars().take(39).collect::<String>() + "…";
        }
        out.push_str(&format!(
            "{:<20} {:<12} {:>5}  {:<40} {:>6}  {:<8} {:<12} {:>5}\n",
            row.pair,
            row.wave,
            row.index,
            step,
            row.weight.map_or("-".into(), |w| format!("{w}%")),
            row.verdict.as_deref().unwrap_or("-"),
            row.outcome,
            age(row.age_seconds)
        ));
    }
    out
}

async fn read(fleet: &Fleet, api: &Api<ConfigMap>) -> Result<Vec<Row>> {
    let selector = format!("{FLEET_LABEL}={}", fleet.name);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::Other {
            message: format!("cannot list the fleet's ConfigMaps: {e}"),
        })?;
    let mut journals = BTreeMap::new();
    for config_map in list {
        let labels = config_map.metadata.labels.unwrap_or_default();
        if let Some(pair) = labels.get(super::pod::PAIR_LABEL) {
            journals.insert(pair.clone(), config_map.data.unwrap_or_default());
        }
    }
    Ok(rows(fleet, &journals, jiff::Timestamp::now()))
}

/// `fleet status`: prints the rows once, or every two seconds with `watch`.
pub fn command(path: &std::path::Path, access: &Access, json: bool, watch: bool) -> Result<()> {
    let fleet = super::file::load(path)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| Error::Other {
        message: format!("cannot start the async runtime: {e}"),
    })?;
    runtime.block_on(async {
        let client = super::management::client(access).await?;
        let api: Api<ConfigMap> = Api::namespaced(client, &fleet.namespace);
        loop {
            let rows = read(&fleet, &api).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                );
            } else {
                if watch {
                    // Clear the screen and go home, as `watch` does.
                    print!("\x1b[2J\x1b[H");
                }
                print!("{}", table(&rows));
            }
            if !watch {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::file::{ClusterRef, Fleet, Pair, Pause, Wave};

    #[test]
    fn a_row_shows_the_last_step_and_the_last_checked_weight() {
        let cluster = || ClusterRef {
            secret: "s".into(),
            key: "kubeconfig".into(),
            context: "c".into(),
        };
        let pair = |name: &str| Pair {
            name: name.into(),
            source: cluster(),
            target: cluster(),
            parameters: BTreeMap::new(),
        };
        let fleet = Fleet {
            name: "f".into(),
            namespace: "n".into(),
            image: "i".into(),
            runbook: "r.rhai".into(),
            files: Vec::new(),
            waves: vec![Wave {
                name: "w".into(),
                concurrency: 1,
                pause: Pause::None,
                pairs: vec![pair("a"), pair("b")],
            }],
        };
        let journal = serde_json::json!({
            "outcome": "running", "started": "2026-01-01T00:00:00Z",
            "steps": [
                {"number": 9, "title": "Target test", "result": null},
                {"number": 10, "title": "Shift", "result": {"steps": [
                    {"weight": 10, "verdict": "pass"}, {"weight": 50, "verdict": "fail"}]}},
            ],
        });
        let mut data = BTreeMap::new();
        data.insert("journal.json".to_string(), journal.to_string());
        data.insert("run-id".to_string(), "r1".to_string());
        let journals = BTreeMap::from([("a".to_string(), data)]);
        let now: jiff::Timestamp = "2026-01-01T00:01:30Z".parse().expect("time");
        let rows = rows(&fleet, &journals, now);
        assert_eq!(rows[0].step.as_deref(), Some("10 Shift"));
        assert_eq!(
            (rows[0].weight, rows[0].verdict.as_deref()),
            (Some(50), Some("fail"))
        );
        assert_eq!(
            (rows[0].outcome.as_str(), rows[0].age_seconds),
            ("running", Some(90))
        );
        assert_eq!((rows[1].outcome.as_str(), rows[1].index), ("pending", 1));
        let table = table(&rows);
        assert!(
            table
                .lines()
                .nth(1)
                .is_some_and(|l| l.contains("50%") && l.contains("90s")),
            "{table}"
        );
    }
}
