//! Kubernetes conditions as kstatus reads them: `Reconciling=True` while work is in progress,
//! `Stalled=True` when it failed for good, otherwise `Ready` decides. Pure functions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::Phase;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const SYNCED: &str = "Synced";

/// Sets (or adds) one condition. `lastTransitionTime` moves only when the status flips, as the API
/// conventions ask.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if status { "True" } else { "False" };
    let next = |last_transition_time: Time| Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            let since = if existing.status == status {
                existing.last_transition_time.clone()
            } else {
                now.clone()
            };
            *existing = next(since);
        }
        None => conditions.push(next(now.clone())),
    }
}

/// The Ready / Reconciling / Stalled triple for a one-shot resource in `phase`.
pub fn for_phase(
    previous: &[Condition],
    phase: Phase,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut conditions = previous.to_vec();
    let (ready, reconciling, stalled) = match phase {
        Phase::Pending => (false, true, false),
        Phase::Succeeded => (true, false, false),
        Phase::Failed => (false, false, true),
    };
    for (type_, status) in [
        (READY, ready),
        (RECONCILING, reconciling),
        (STALLED, stalled),
    ] {
        set(
            &mut conditions,
            type_,
            status,
            reason,
            message,
            generation,
            now,
        );
    }
    conditions
}

/// The status of condition `type_`, if present.
pub fn status_of<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn phases_map_to_kstatus() {
        for (phase, ready, reconciling, stalled) in [
            (Phase::Pending, "False", "True", "False"),
            (Phase::Succeeded, "True", "False", "False"),
            (Phase::Failed, "False", "False", "True"),
        ] {
            let c = for_phase(&[], phase, "R", "m", Some(3), &at(1));
            assert_eq!(status_of(&c, READY), Some(ready));
            assert_eq!(status_of(&c, RECONCILING), Some(reconciling));
            assert_eq!(status_of(&c, STALLED), Some(stalled));
            assert!(c.iter().all(|c| c.observed_generation == Some(3)));
        }
    }

    #[test]
    fn transition_time_moves_only_on_flip() {
        let first = for_phase(&[], Phase::Pending, "Validating", "m", Some(1), &at(10));
        let same = for_phase(
            &first,
            Phase::Pending,
            "AwaitingDevice",
            "m2",
            Some(1),
            &at(20),
        );
        let ready = |c: &[Condition]| c.iter().find(|c| c.type_ == READY).unwrap().clone();
        assert_eq!(ready(&same).last_transition_time, at(10));
        assert_eq!(ready(&same).reason, "AwaitingDevice");
        let done = for_phase(
            &same,
            Phase::Succeeded,
            "PasscodeReset",
            "m3",
            Some(1),
            &at(30),
        );
        assert_eq!(ready(&done).last_transition_time, at(30));
        assert_eq!(done.len(), 3);
    }
}
