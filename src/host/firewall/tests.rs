//! Tests of [`super::ensure`] and [`super::remove`] against the fake iptables ([`super::fake`]),
//! which models one `INPUT` chain per program and records every call: what changes, what is
//! left alone, concurrent writers, and the errors.

use std::collections::HashMap;

use super::fake::*;
use super::*;
use crate::config::TunnelType::{Geneve, Stt, Vxlan};
use crate::process::bounded::BoundedError;

const NFT4: &str = "iptables-nft";

fn nft4(f: &Fake, t: TunnelType) -> Result<Vec<Change>, FirewallError> {
    ensure(f, Backend::Nft, t, &[Family::V4])
}
const V4: &[Family] = &[Family::V4];

#[test]
fn ensure_when_absent_inserts_once_at_the_head() {
    let f = Fake::with(NFT4, &[calico(), drop_22()]);
    let changes = nft4(&f, Geneve).unwrap();
    assert_eq!(changes, vec![inserted(Family::V4, Geneve)]);
    assert_eq!(f.chain(NFT4), vec![geneve(), calico(), drop_22()]);
    assert_eq!(f.ops(), ["-C", "-I", "-S", "-C", "-C"]);
    assert!(f.calls.borrow().iter().all(|(p, _)| p == NFT4));
    f.assert_by_content();
}

#[test]
fn ensure_when_present_changes_nothing_and_keeps_position() {
    // Another CNI inserted above ours since: ours must not move back to the head.
    let rules = [calico(), geneve(), drop_22()];
    let f = Fake::with(NFT4, &rules);
    for _ in 0..3 {
        assert_eq!(nft4(&f, Geneve).unwrap(), vec![]);
    }
    assert_eq!(f.chain(NFT4), rules);
    assert!(
        !f.ops().iter().any(|op| op == "-I" || op == "-D"),
        "{:?}",
        f.ops()
    );
    f.assert_by_content();
}

#[test]
fn ensure_removes_other_tunnel_rules_by_spec_and_duplicates() {
    let rules = [vxlan(), calico(), vxlan(), stt()];
    let rules = [&rules[..], &[drop_22(), geneve(), geneve()]].concat();
    let f = Fake::with("ip6tables-legacy", &rules);
    let changes = ensure(&f, Backend::Legacy, Geneve, &[Family::V6]).unwrap();
    let v6 = Family::V6;
    assert_eq!(
        changes,
        vec![
            removed(v6, Geneve, 1),
            removed(v6, Vxlan, 2),
            removed(v6, Stt, 1),
        ]
    );
    assert_eq!(
        f.chain("ip6tables-legacy"),
        vec![calico(), drop_22(), geneve()]
    );
    f.assert_by_content();
}

#[test]
fn switching_tunnel_type_adds_new_then_removes_old() {
    let f = Fake::with(NFT4, &[calico(), geneve()]);
    let changes = nft4(&f, Vxlan).unwrap();
    let want = [inserted(Family::V4, Vxlan), removed(Family::V4, Geneve, 1)];
    assert_eq!(changes, want);
    assert_eq!(f.chain(NFT4), vec![vxlan(), calico()]);
    f.assert_by_content();
}

#[test]
fn both_families_use_their_own_program() {
    let f = Fake::default();
    let both = [Family::V4, Family::V6];
    let changes = ensure(&f, Backend::Legacy, Stt, &both).unwrap();
    let want = [inserted(Family::V4, Stt), inserted(Family::V6, Stt)];
    assert_eq!(changes, want);
    assert_eq!(f.chain("iptables-legacy"), vec![stt()]);
    assert_eq!(f.chain("ip6tables-legacy"), vec![stt()]);
    assert_eq!(ensure(&f, Backend::Legacy, Stt, &[]).unwrap(), vec![]);
}

#[test]
fn concurrent_insert_is_deduplicated_to_one() {
    let f = Fake::with(NFT4, &[calico()]);
    // Another run's -C also saw nothing and inserts right after ours.
    f.hook("-S", |chain| chain.insert(0, geneve()));
    let changes = nft4(&f, Geneve).unwrap();
    let want = [inserted(Family::V4, Geneve), removed(Family::V4, Geneve, 1)];
    assert_eq!(changes, want);
    assert_eq!(f.chain(NFT4), vec![geneve(), calico()]);
    f.assert_by_content();
}

#[test]
fn copy_deleted_by_a_concurrent_run_is_inserted_again() {
    let f = Fake::with(NFT4, &[calico()]);
    // The other run also inserted, counted two, and both deleted one: none left.
    f.hook("-S", |chain| chain.retain(|r| *r != geneve()));
    nft4(&f, Geneve).unwrap();
    assert_eq!(f.chain(NFT4), vec![geneve(), calico()]);
    assert_eq!(f.ops().iter().filter(|o| *o == "-I").count(), 2);
}

#[test]
fn delete_that_loses_a_race_counts_as_gone() {
    for nft_race in [false, true] {
        let f = Fake {
            nft_race,
            ..Fake::with(NFT4, &[vxlan(), calico()])
        };
        // Another run switching to geneve too deletes the vxlan rule between our -C and -D.
        f.hook("-D", |chain| chain.retain(|r| *r != vxlan()));
        let changes = nft4(&f, Geneve).unwrap();
        assert_eq!(changes, [inserted(Family::V4, Geneve)]);
        assert_eq!(f.chain(NFT4), vec![geneve(), calico()]);
    }
}

#[test]
fn listing_spelled_differently_trusts_check() {
    let f = Fake {
        odd_listing: true,
        ..Fake::with(NFT4, &[geneve()])
    };
    assert_eq!(nft4(&f, Geneve).unwrap(), vec![]);
    assert_eq!(f.chain(NFT4), vec![geneve()]);
}

#[test]
fn a_chain_that_never_settles_is_an_error_not_a_loop() {
    let f = Fake {
        sticky: true,
        ..Fake::with(NFT4, &[geneve(), geneve()])
    };
    let err = nft4(&f, Geneve).unwrap_err();
    assert!(
        matches!(err, FirewallError::NotConverged { count: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("iptables-nft"), "{err}");
    // Removing a rule whose -D never takes effect is bounded too.
    let err = remove(&f, Backend::Nft, V4).unwrap_err();
    assert!(
        matches!(err, FirewallError::StillPresent { deleted: 1000, .. }),
        "{err:?}"
    );
    f.assert_by_content();
}

#[test]
#[rustfmt::skip]
fn errors_name_the_command_status_and_stderr() {
    let perm = "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n";
    let cases: &[(Option<i32>, &str, &str)] = &[
        (Some(2), "Couldn't load match `comment'", "exit status 2"),
        (Some(4), perm, "exit status 4"),
        // Exit 1 alone does not mean "absent": the chain itself may be missing.
        (Some(1), "iptables: No chain/target/match by that name.", "exit status 1"),
        (None, "", "killed by a signal"),
    ];
    for &(code, stderr, status) in cases {
        let answer = output(code, String::new(), stderr);
        let f = Fake { scripted: HashMap::from([(NFT4, answer)]), ..Fake::default() };
        let err = nft4(&f, Geneve).unwrap_err();
        let FirewallError::Failed { program, args, code: c, stderr: e } = &err else {
            panic!("{err:?}");
        };
        assert_eq!((program.as_str(), *c, e.as_str()), (NFT4, code, stderr));
        assert_eq!(args[..4], words(&["-w", "5", "-C", "INPUT"]));
        let text = err.to_string();
        assert!(text.contains("`iptables-nft -w 5 -C INPUT -p udp -m udp --dport 6081"), "{text}");
        assert!(text.contains(status) && text.contains(stderr.trim()), "{text}");
        assert_eq!(f.calls.borrow().len(), 1, "stopped at the first failure");
    }
    let f = Fake { missing: vec!["ip6tables-legacy"], ..Fake::default() };
    let err = remove(&f, Backend::Legacy, &[Family::V6]).unwrap_err();
    assert!(matches!(err, FirewallError::Run { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("cannot run `ip6tables-legacy -w 5 -C INPUT -p udp"), "{text}");
}

#[test]
fn a_hung_iptables_fails_naming_the_command_and_the_deadline() {
    let f = Fake {
        hung: vec![NFT4],
        ..Fake::default()
    };
    let err = nft4(&f, Geneve).unwrap_err();
    let FirewallError::Run {
        program,
        source: RunError::Bounded(source),
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(program, NFT4);
    assert!(matches!(source, BoundedError::Deadline { deadline, .. } if *deadline == DEADLINE));
    let text = err.to_string();
    assert!(
        text.starts_with("cannot run `iptables-nft -w 5 -C INPUT -p udp"),
        "{text}"
    );
    assert!(text.contains("did not finish within 10s"), "{text}");
    assert_eq!(f.calls.borrow().len(), 1, "stopped at the first failure");
}

#[test]
fn remove_deletes_only_ours_every_copy() {
    let rules = [geneve(), calico(), vxlan(), geneve(), drop_22(), stt()];
    let f = Fake::with(NFT4, &rules);
    let changes = remove(&f, Backend::Nft, V4).unwrap();
    let want = [
        removed(Family::V4, Geneve, 2),
        removed(Family::V4, Vxlan, 1),
        removed(Family::V4, Stt, 1),
    ];
    assert_eq!(changes, want);
    assert_eq!(f.chain(NFT4), vec![calico(), drop_22()]);
    assert_eq!(remove(&f, Backend::Nft, V4).unwrap(), vec![]);
    assert!(!f.ops().iter().any(|op| op == "-I"));
    f.assert_by_content();
}

/// What iptables-legacy 1.8.9 prints, exit 4, run as uid 65534 (with NET_ADMIN and NET_RAW)
/// where it cannot open its lock: a pod that does not mount the host's /run/xtables.lock.
const LOCK_DENIED: &str = "Fatal: can't open lock file /run/xtables.lock: Permission denied\n";

#[test]
#[rustfmt::skip]
fn hints_read_iptables_own_words() {
    const LEGACY4: &str = "iptables-legacy";
    let nft_perm = "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n";
    // (program, exit code, stderr, part of the hint)
    let cases: &[(&str, i32, &str, &str)] = &[
        (LEGACY4, 4, LOCK_DENIED, "mount the host's /run/xtables.lock"),
        (NFT4, 4, nft_perm, "CAP_NET_ADMIN"),
        (NFT4, 2, "Couldn't load match `comment'", "run the command above"),
    ];
    for &(program, code, stderr, hint_part) in cases {
        let answer = output(Some(code), String::new(), stderr);
        let f = Fake { scripted: HashMap::from([(program, answer)]), ..Fake::default() };
        let backend = if program == LEGACY4 { Backend::Legacy } else { Backend::Nft };
        let err = ensure(&f, backend, Geneve, V4).unwrap_err();
        assert!(hint(&err).contains(hint_part), "{err}: {}", hint(&err));
    }
    let f = Fake { missing: vec![NFT4], ..Fake::default() };
    assert_eq!(hint(&nft4(&f, Geneve).unwrap_err()), "install iptables in the image");
    let f = Fake { hung: vec![NFT4], ..Fake::default() };
    assert!(hint(&nft4(&f, Geneve).unwrap_err()).contains("holds iptables up"));
}
