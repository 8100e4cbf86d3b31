//! The exactly-once invariants, over arbitrary observations.

use proptest::prelude::*;

use super::*;

fn arb_reason() -> impl Strategy<Value = Reason> {
    proptest::sample::select(Reason::ALL.to_vec())
}

/// No status, a reason on the way (most often), or any reason.
fn arb_status_reason() -> impl Strategy<Value = Option<Reason>> {
    let pending: Vec<Reason> = Reason::ALL
        .iter()
        .copied()
        .filter(|r| !r.phase().is_terminal())
        .collect();
    prop_oneof![
        2 => Just(None),
        4 => proptest::sample::select(pending).prop_map(Some),
        2 => arb_reason().prop_map(Some),
    ]
}

/// Not read yet, a failed read, or (most often) found.
fn arb_read<T: Clone + std::fmt::Debug + 'static>(v: T) -> impl Strategy<Value = Option<Read<T>>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Read::NotFound)),
        1 => Just(Some(Read::Denied("d".into()))),
        1 => Just(Some(Read::Unavailable("u".into()))),
        4 => Just(Some(Read::Found(v))),
    ]
}

/// What the claimed device may list around a claim: this claim's command, a look-alike from
/// another claim, and one without a fingerprint (which a legacy claim could take for its own).
fn listing() -> Vec<Operation> {
    vec![
        mine(),
        command(
            "enterprises/LC01/devices/d1/operations/look-alike",
            "600.000000043s",
        ),
        reset_op(
            "enterprises/LC01/devices/d1/operations/plain",
            &claimed_at().to_string(),
            &["LOCK_NOW"],
        ),
    ]
}

fn arb_listing() -> impl Strategy<Value = Option<Read<Vec<Operation>>>> {
    prop_oneof![
        Just(None),
        Just(Some(Read::NotFound)),
        Just(Some(Read::Denied("d".into()))),
        Just(Some(Read::Unavailable("u".into()))),
        proptest::sample::subsequence(listing(), 0..=listing().len())
            .prop_map(|ops| Some(Read::Found(ops))),
    ]
}

/// The recorded operation as read: pending, done, cancelled, refused by the device.
fn arb_operation() -> impl Strategy<Value = Option<Read<Operation>>> {
    prop_oneof![
        Just(None),
        Just(Some(Read::NotFound)),
        Just(Some(Read::Denied("d".into()))),
        Just(Some(Read::Unavailable("u".into()))),
        proptest::sample::select(vec![
            json!({"done": false}),
            json!({"done": true}),
            json!({"done": true, "error": {"code": 1, "message": "cancelled"}}),
            json!({"done": true, "metadata": {"errorCode": "INVALID_VALUE"}}),
        ])
        .prop_map(|v| Some(Read::Found(op(v)))),
    ]
}

fn arb_issued() -> impl Strategy<Value = Option<Issued>> {
    (0u8..6).prop_map(|i| match i {
        0 | 5 => None,
        1 => Some(Issued::Created(Box::new(op(
            json!({"metadata": {"type": "RESET_PASSWORD", "createTime": claimed_at().to_string(), "duration": FINGERPRINT}}),
        )))),
        2 => Some(Issued::NotCreated("n".into())),
        3 => Some(Issued::Refused {
            status: 400,
            message: "m".into(),
        }),
        _ => Some(Issued::Ambiguous("a".into())),
    })
}

fn arb_record() -> impl Strategy<Value = Option<Recorded>> {
    prop_oneof![
        2 => Just(None),
        4 => Just(Some(Recorded::Ours)),
        1 => Just(Some(Recorded::Earlier {
            uid: "u".into(),
            claimed_at: "t".into(),
            record: "n/c".into()
        })),
        1 => Just(Some(Recorded::Full {
            record: "n/c".into()
        })),
        1 => Just(Some(Recorded::Unavailable("u".into()))),
    ]
}

/// A claim as the status holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Claim {
    None,
    /// With its command and fingerprint.
    Fingerprinted,
    /// `claimedAt` only, from an operator before fingerprints.
    Legacy,
}

fn arb_claim() -> impl Strategy<Value = Claim> {
    proptest::sample::select(vec![Claim::None, Claim::Fingerprinted, Claim::Legacy])
}

/// A google-duration of `secs` and `nanos`, in the long or the shortest form.
fn duration_text(secs: u64, nanos: u32, short: bool) -> String {
    let long = format!("{secs}.{nanos:09}");
    if short {
        format!("{}s", long.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{long}s")
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Settled resets leave the cache (see `cached`); that is safe because deciding on one does
    /// nothing at all.
    #[test]
    fn settled_resets_need_nothing(
        reason in proptest::option::of(arb_reason()),
        generation in 1i64..3,
        finalizer in any::<bool>(),
        deleted in any::<bool>(),
        may_send in any::<bool>(),
        with_secret in any::<bool>(),
        (delete_after, secret_deleted) in (any::<bool>(), any::<bool>()),
    ) {
        let mut r = with_status(issued(with_passcode(), OP), |s| {
            s.phase = reason.map(|r| r.phase());
            s.reason = reason;
            if secret_deleted { s.secret_deleted_at = s.completed_at.clone().or(s.issued_at.clone()); }
        });
        r.spec.new_passcode.as_mut().unwrap().delete_secret_after_finished = delete_after;
        r.metadata.generation = Some(generation);
        if !finalizer { r.metadata.finalizers = None; }
        if deleted { r = deleting(r); }
        let mut case = Case::new(r.clone());
        case.inputs.may_send = may_send;
        if with_secret { case.inputs.secret = Some(secret("830417")); }
        let d = case.decide();
        if super::super::cached::settled(&r) {
            prop_assert!(d.status.is_none() && d.effect.is_none() && d.requeue.is_none(), "{:?}", d);
        } else {
            prop_assert!(!reason.is_some_and(|r| r.phase().is_terminal()) || generation != 1 || finalizer || deleted || (delete_after && !secret_deleted));
        }
    }

    /// Exactly once: a claim only over this reset's own record and never over another claim;
    /// IssueCommand only by the process that wrote the claim and never sent for it, for the spec
    /// it claimed; a claim dropped only by a release after issueCommand certainly created nothing;
    /// reads of the device after a claim go to the claimed device; terminal resets never call
    /// AMAPI.
    #[test]
    fn exactly_once(
        reason in arb_status_reason(),
        claim in arb_claim(),
        operation in any::<bool>(),
        (finalizer, deleted, may_send) in (any::<bool>(), proptest::bool::weighted(0.25), any::<bool>()),
        edit in prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        issued in arb_issued(),
        dev in arb_read(device(json!({}))),
        ops in arb_listing(),
        oper in arb_operation(),
        (cancelled, with_secret, forgotten, in_process, delete_after) in (any::<bool>(), proptest::bool::weighted(0.75), any::<bool>(), proptest::bool::weighted(0.2), any::<bool>()),
        record in arb_record(),
        age in 0i64..1500,
    ) {
        let claimed = claim != Claim::None;
        let operation = operation && claimed;
        let mut r = with_status(with_passcode(), |s| {
            s.phase = reason.map(|r| r.phase());
            s.reason = reason;
            s.observed_generation = Some(1);
            if claimed {
                s.claimed_at = Some(Time(claimed_at()));
            }
            if claim == Claim::Fingerprinted {
                s.claimed_command = Some(claimed_command(&with_passcode().spec, NONCE));
            }
            if operation {
                s.operation = Some(OP.into());
                s.issued_at = Some(Time(claimed_at() + secs(1)));
                s.expires_at = Some(Time(claimed_at() + secs(601)));
            }
        });
        // Edited after the status was written: the same spec again, or another device.
        match edit {
            1 => r.metadata.generation = Some(2),
            2 => r = edited(r, on_device_b()),
            _ => {}
        }
        if finalizer { r = finalized(r); }
        if deleted { r = deleting(r); }
        if let Some(source) = r.spec.new_passcode.as_mut() {
            source.delete_secret_after_finished = delete_after;
        }
        let before = r.status.clone().unwrap();
        let mut case = Case::new(r.clone()).since_claim(age);
        case.inputs.device = dev;
        case.inputs.operations = ops;
        case.inputs.operation = oper;
        case.inputs.cancelled = cancelled;
        case.inputs.forgotten = forgotten;
        case.inputs.may_send = may_send;
        case.inputs.issued = issued;
        case.inputs.record = record.clone();
        if in_process { case.inputs.claimed_in_process = Some("ns/other".into()); }
        if with_secret { case.inputs.secret = Some(secret("830417")); }
        let d = case.decide();
        let issued = &case.inputs.issued;

        let terminal = reason.is_some_and(|r| r.phase().is_terminal());
        let spec_changed = edit != 0;
        // Where the claim's command goes: the claimed device, or the spec's for a legacy claim.
        let target = if claim == Claim::Fingerprinted { DEVICE } else { r.spec.device.as_str() };
        match &d.effect {
            Some(Effect::Claim) => {
                prop_assert!(!claimed, "never a claim over a claim");
                prop_assert_eq!(&record, &Some(Recorded::Ours), "only over its own record");
                prop_assert!(finalizer && !deleted && !terminal && !in_process);
                let s = d.status.as_ref().unwrap();
                prop_assert!(s.claimed_at.is_some() && s.operation.is_none());
                prop_assert_eq!(&s.claimed_command, &Some(claimed_command(&r.spec, NONCE)));
            }
            Some(Effect::IssueCommand(p)) => {
                prop_assert!(claimed && may_send, "only by the process that wrote the claim");
                prop_assert!(!operation && issued.is_none() && !deleted && !terminal);
                prop_assert!(!spec_changed, "only for the spec that was claimed");
                if claim == Claim::Fingerprinted {
                    prop_assert_eq!(p.device.as_str(), DEVICE);
                    prop_assert_eq!(p.duration.as_str(), FINGERPRINT);
                }
            }
            Some(Effect::Release) => {
                prop_assert!(claimed && may_send && !operation && !deleted && !terminal);
                prop_assert!(matches!(issued, Some(Issued::NotCreated(_))), "only after NotCreated");
                let s = d.status.as_ref().unwrap();
                prop_assert!(s.claimed_at.is_none() && s.claimed_command.is_none());
                prop_assert!(s.operation.is_none());
            }
            Some(Effect::Forget) => {
                prop_assert!(deleted && !claimed && finalizer && !forgotten && !terminal);
            }
            Some(Effect::GetDevice(name) | Effect::ListOperations(name)) => {
                let expected = if claimed { target } else { r.spec.device.as_str() };
                prop_assert_eq!(name.as_str(), expected);
            }
            Some(Effect::Record | Effect::AddFinalizer | Effect::ReadSecret { .. } | Effect::ReadNamespace(_)) => {
                prop_assert!(!claimed && !deleted && !terminal);
            }
            Some(Effect::DeleteSecret { name, uid }) => {
                // Only once the outcome is known (final, or deleted after the claim, its command
                // cancelled or gone), and only the Secret the claim's command read (the spec's
                // before any claim); never for a claim that did not record it.
                prop_assert!(delete_after && (terminal || (deleted && claimed && finalizer)));
                let expected = match &before.claimed_command {
                    Some(c) => c.secret_name.as_ref(),
                    None if claimed => None,
                    None => r.spec.new_passcode.as_ref().map(|s| &s.secret_key_ref.name),
                };
                prop_assert_eq!(Some(name), expected);
                prop_assert_eq!(uid, &before.claimed_command.as_ref().and_then(|c| c.secret_uid.clone()));
            }
            Some(Effect::GetOperation(_) | Effect::CancelOperation(_) | Effect::RemoveFinalizer) | None => {}
        }
        if terminal && !deleted {
            prop_assert!(matches!(d.effect, None | Some(Effect::RemoveFinalizer | Effect::DeleteSecret { .. })), "{:?}", d.effect);
        }
        if claimed && let Some(s) = &d.status && d.effect != Some(Effect::Release) {
            // A claim stays as written until it is released.
            prop_assert_eq!(&s.claimed_at, &before.claimed_at);
            prop_assert_eq!(&s.claimed_command, &before.claimed_command);
            // Only this claim's command (or the one issueCommand answered with) is adopted.
            if claim == Claim::Fingerprinted && !operation && let Some(name) = &s.operation {
                let created = may_send && matches!(issued, Some(Issued::Created(_)));
                prop_assert!(name == MINE || (created && name == OP), "adopted {}", name);
            }
            // After a spec edit, the end is reported as SpecChanged, naming the claimed device.
            let newly_final = !terminal && s.phase.is_some_and(|p| p.is_terminal());
            let refused = may_send && !operation && matches!(issued, Some(Issued::Refused { .. }));
            if spec_changed && newly_final && !refused {
                prop_assert_eq!(s.reason, Some(Reason::SpecChanged));
                let unsent = may_send && !operation && issued.is_none();
                let m = s.message.as_deref().unwrap_or_default();
                prop_assert!(unsent || m.contains(target), "{}", m);
            }
        }
        // Whatever happens, the status never contains the passcode.
        if let Some(s) = &d.status {
            prop_assert!(!serde_json::to_string(s).unwrap().contains("830417"));
        }
    }

    /// Recovery adopts the command with this claim's fingerprint and nothing else, whatever else
    /// the device lists (same type, flags, time; another duration) and however long after the
    /// claim; it never sends, releases or claims.
    #[test]
    fn recovery_never_adopts_another_resets_command(
        others in proptest::collection::vec(
            (prop_oneof![Just(600u64), Just(3600u64), 60u64..700], 0u32..1_000_000_000, any::<bool>(), -60i64..400, any::<bool>()),
            0..6,
        ),
        with_mine in any::<bool>(),
        at in 0usize..7,
        age in 0i64..1500,
        ambiguous in any::<bool>(),
        short_window in any::<bool>(),
    ) {
        let want = fingerprint_nanos(FINGERPRINT);
        let mut listed: Vec<Operation> = others
            .iter()
            .enumerate()
            .map(|(i, &(secs_, nanos, short, offset, lock))| {
                let name = format!("enterprises/LC01/devices/d1/operations/other-{i}");
                let mut o = command(&name, &duration_text(secs_, nanos, short));
                let m = o.metadata.as_mut().unwrap();
                m.create_time = Some((claimed_at() + secs(offset)).to_string());
                if !lock {
                    m.reset_password_flags.clear();
                }
                o
            })
            .filter(|o| o.metadata.as_ref().unwrap().duration.as_deref().and_then(fingerprint_nanos) != want)
            .collect();
        if with_mine {
            listed.insert(at.min(listed.len()), mine());
        }
        let mut case = Case::new(claimed(with_passcode())).listed(listed).since_claim(age);
        if short_window {
            case.config.adoption_window = std::time::Duration::from_secs(30);
        }
        if ambiguous {
            case = case.may_send().issued(Issued::Ambiguous("timed out".into()));
        }
        let window = case.config.adoption_window.as_secs() as i64;
        let d = case.decide();
        prop_assert_eq!(&d.effect, &None);
        let s = d.status.as_ref().unwrap();
        prop_assert!(s.claimed_at.is_some() && s.claimed_command.is_some());
        if with_mine {
            prop_assert_eq!(s.operation.as_deref(), Some(MINE));
            prop_assert_eq!(s.reason, Some(Reason::AwaitingDevice));
        } else {
            prop_assert_eq!(s.operation.as_deref(), None);
            let expected = if age < window { Reason::Issuing } else { Reason::OutcomeUnknown };
            prop_assert_eq!(s.reason, Some(expected));
        }
    }

    /// A spec edited after the claim (possible without CEL) is never acted on: nothing is sent
    /// for it, the claim is never released or replaced, reads go to the claimed device, and the
    /// end is reported as SpecChanged.
    #[test]
    fn a_spec_edited_after_the_claim_never_sends_anything_new(
        to in proptest::sample::select(vec![
            on_device_b(),
            json!({"device": DEVICE}),
            json!({"device": DEVICE_B, "lockNow": false, "expiresAfter": "1h"}),
        ]),
        operation in any::<bool>(),
        (may_send, ambiguous, deleted, cancelled) in (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        dev in arb_read(device(json!({}))),
        ops in arb_listing(),
        oper in arb_operation(),
        record in arb_record(),
        age in 0i64..1500,
    ) {
        let base = if operation { issued(with_passcode(), OP) } else { claimed(with_passcode()) };
        let mut r = edited(base, to);
        if deleted { r = deleting(r); }
        let mut case = Case::new(r).since_claim(age);
        // The shell answers issueCommand only after sending it, which needs an unchanged spec;
        // at most an ambiguous answer from before the edit was seen.
        case.inputs.may_send = may_send && !operation;
        if case.inputs.may_send && ambiguous {
            case.inputs.issued = Some(Issued::Ambiguous("a".into()));
        }
        case.inputs.device = dev;
        case.inputs.operations = ops;
        case.inputs.operation = oper;
        case.inputs.cancelled = cancelled;
        case.inputs.record = record;
        case.inputs.secret = Some(secret("830417"));
        let d = case.decide();
        match &d.effect {
            Some(Effect::GetDevice(name) | Effect::ListOperations(name)) => {
                prop_assert_eq!(name.as_str(), DEVICE);
            }
            Some(Effect::GetOperation(_) | Effect::CancelOperation(_) | Effect::RemoveFinalizer) | None => {}
            other => prop_assert!(false, "{:?}", other),
        }
        if let Some(s) = &d.status {
            prop_assert_eq!(&s.claimed_command, &Some(claimed_command(&with_passcode().spec, NONCE)));
            prop_assert_eq!(&s.claimed_at, &Some(Time(claimed_at())));
            if s.phase.is_some_and(|p| p.is_terminal()) {
                prop_assert_eq!(s.reason, Some(Reason::SpecChanged));
                let m = s.message.as_deref().unwrap_or_default();
                let unsent = case.inputs.may_send && case.inputs.issued.is_none();
                prop_assert!(m.contains(if unsent { "nothing was sent" } else { DEVICE }), "{}", m);
            }
        }
    }
}
