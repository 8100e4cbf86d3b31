//! One reset as the plugin shows it, read from the raw object so that fields a newer operator
//! adds (such as `status.requester`) or reasons this version does not know never break it.

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::hints::what_to_do_str;

/// A checklist line as the status records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub rule: String,
    pub description: String,
    pub met: bool,
}

/// What `status`, `list` and `-o json` show of a reset. Never the passcode: the reset holds none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub name: String,
    pub namespace: String,
    pub device: String,
    pub phase: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// From the README's table of reasons.
    pub what_to_do: Option<&'static str>,
    /// `status.requester.username`, when the operator records who asked.
    pub requester: Option<String>,
    pub created: Option<String>,
    pub completed_at: Option<String>,
    pub operation: Option<String>,
    /// The Secret the reset reads its passcode from.
    pub secret: Option<String>,
    pub secret_deleted_at: Option<String>,
    pub requirements: Vec<Line>,
}

impl Summary {
    /// From a PasscodeReset as JSON (a `DynamicObject` serialized, or `kubectl get -o json`).
    pub fn from_json(obj: &Value) -> Summary {
        let text = |pointer: &str| {
            obj.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let reason = text("/status/reason");
        let requirements = obj
            .pointer("/status/requirements")
            .and_then(Value::as_array)
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| Line {
                        rule: l["rule"].as_str().unwrap_or_default().to_owned(),
                        description: l["description"].as_str().unwrap_or_default().to_owned(),
                        met: l["met"].as_bool().unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Summary {
            name: text("/metadata/name").unwrap_or_default(),
            namespace: text("/metadata/namespace").unwrap_or_default(),
            device: text("/spec/device").unwrap_or_default(),
            phase: text("/status/phase"),
            what_to_do: reason.as_deref().and_then(what_to_do_str),
            reason,
            message: text("/status/message"),
            requester: text("/status/requester/username"),
            created: text("/metadata/creationTimestamp"),
            completed_at: text("/status/completedAt"),
            operation: text("/status/operation"),
            secret: text("/spec/newPasscode/secretKeyRef/name"),
            secret_deleted_at: text("/status/secretDeletedAt"),
            requirements,
        }
    }

    /// Succeeded or Failed.
    pub fn is_final(&self) -> bool {
        matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
    }

    pub fn succeeded(&self) -> bool {
        self.phase.as_deref() == Some("Succeeded")
    }

    /// `Phase/Reason`, or `Pending/-` before the operator has written a status.
    pub fn state(&self) -> String {
        format!(
            "{}/{}",
            self.phase.as_deref().unwrap_or("Pending"),
            self.reason.as_deref().unwrap_or("-")
        )
    }

    /// A few lines for people: where it stands, why, and what to do.
    pub fn describe(&self) -> String {
        let mut out = format!("{} ({}): {}\n", self.name, self.device, self.state());
        if let Some(m) = &self.message {
            out.push_str(&format!("  {m}\n"));
        }
        if let Some(h) = self.what_to_do {
            out.push_str(&format!("  What to do: {h}\n"));
        }
        if let Some(r) = &self.requester {
            out.push_str(&format!("  Requested by: {r}\n"));
        }
        for line in &self.requirements {
            let mark = if line.met { '✓' } else { '✗' };
            out.push_str(&format!("  {mark} {}\n", line.description));
        }
        if let Some(op) = &self.operation {
            out.push_str(&format!("  Operation: {op}\n"));
        }
        if let Some(at) = &self.secret_deleted_at {
            out.push_str(&format!("  Secret deleted by the operator at {at}\n"));
        }
        out
    }
}

/// `list`'s table: name, device, phase, reason, requester, age (and the namespace with `-A`).
pub fn table(rows: &[Summary], now: Timestamp, namespaces: bool) -> String {
    let mut cells: Vec<Vec<String>> = vec![
        [
            "NAMESPACE",
            "NAME",
            "DEVICE",
            "PHASE",
            "REASON",
            "REQUESTER",
            "AGE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ];
    for r in rows {
        let age = r
            .created
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .map_or("-".to_owned(), |t| age(now, t));
        cells.push(vec![
            r.namespace.clone(),
            r.name.clone(),
            r.device.clone(),
            r.phase.clone().unwrap_or_else(|| "Pending".into()),
            r.reason.clone().unwrap_or_else(|| "-".into()),
            r.requester.clone().unwrap_or_else(|| "-".into()),
            age,
        ]);
    }
    let skip = usize::from(!namespaces);
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let line: Vec<String> = (skip..7)
            .map(|i| format!("{:<w$}", row[i], w = widths[i]))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// kubectl's way of showing an age: `42s`, `5m10s`, `3h`, `2d`.
pub fn age(now: Timestamp, then: Timestamp) -> String {
    let s = now.duration_since(then).as_secs().max(0);
    match s {
        0..120 => format!("{s}s"),
        120..600 => format!("{}m{}s", s / 60, s % 60),
        600..10800 => format!("{}m", s / 60),
        10800..172800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reset(name: &str, status: Value) -> Value {
        json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "PasscodeReset",
            "metadata": {"name": name, "namespace": "helpdesk", "creationTimestamp": "2026-11-23T10:00:00Z"},
            "spec": {"device": "enterprises/LC01/devices/d1",
                     "newPasscode": {"secretKeyRef": {"name": "s", "key": "passcode"}}},
            "status": status,
        })
    }

    #[test]
    fn reads_fields_a_newer_operator_adds_and_reasons_it_does_not_know() {
        let s = Summary::from_json(&reset(
            "a",
            json!({"phase": "Failed", "reason": "DeviceRejected", "message": "m",
                   "requester": {"username": "alice@example.com", "groups": ["helpdesk"]}}),
        ));
        assert_eq!(s.requester.as_deref(), Some("alice@example.com"));
        assert!(s.what_to_do.unwrap().contains("unlock the work profile"));
        assert!(s.is_final() && !s.succeeded());
        let newer = Summary::from_json(&reset(
            "b",
            json!({"phase": "Pending", "reason": "AwaitingSomethingNewer"}),
        ));
        assert_eq!(newer.state(), "Pending/AwaitingSomethingNewer");
        assert_eq!((newer.what_to_do, newer.requester), (None, None));
        let fresh = Summary::from_json(&reset("c", Value::Null));
        assert_eq!(fresh.state(), "Pending/-");
        assert!(!fresh.is_final());
    }

    #[test]
    fn the_table_has_the_documented_columns() {
        let now: Timestamp = "2026-11-23T10:05:10Z".parse().unwrap();
        let rows = [
            Summary::from_json(&reset(
                "jdoe-1",
                json!({"phase": "Succeeded", "reason": "PasscodeReset",
                       "requester": {"username": "alice"}}),
            )),
            Summary::from_json(&reset("jdoe-2", Value::Null)),
        ];
        let t = table(&rows, now, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            ["NAME", "DEVICE", "PHASE", "REASON", "REQUESTER", "AGE"]
        );
        let first: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            first,
            [
                "jdoe-1",
                "enterprises/LC01/devices/d1",
                "Succeeded",
                "PasscodeReset",
                "alice",
                "5m10s"
            ]
        );
        let second: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(second[2..5], ["Pending", "-", "-"]);
        assert!(table(&rows, now, true).starts_with("NAMESPACE"));
    }

    #[test]
    fn ages_read_like_kubectls() {
        let t: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let at = |s: i64| t + jiff::SignedDuration::from_secs(s);
        assert_eq!(age(at(42), t), "42s");
        assert_eq!(age(at(310), t), "5m10s");
        assert_eq!(age(at(3600), t), "60m");
        assert_eq!(age(at(4 * 3600), t), "4h");
        assert_eq!(age(at(3 * 86400), t), "3d");
    }
}
