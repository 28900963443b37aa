//! Tests of [`super`]: the release parser table and the kernel rules on parsed releases.

use super::*;

fn rel(major: u32, minor: u32, patch: u32, build: Option<u32>) -> Release {
    Release {
        major,
        minor,
        patch,
        build,
    }
}

#[test]
#[rustfmt::skip]
fn parses_real_releases() {
    let table: &[(&str, Release)] = &[
        ("6.18.44-fc-v669", rel(6, 18, 44, None)),
        ("6.18.44-fc-v669\n", rel(6, 18, 44, None)),
        ("5.15.0-91-generic", rel(5, 15, 0, Some(91))),
        ("3.10.0-862.14.4.el7.x86_64", rel(3, 10, 0, Some(862))),
        ("3.10.0-1160.119.1.el7.x86_64", rel(3, 10, 0, Some(1160))),
        ("4.18.0-513.el8.x86_64", rel(4, 18, 0, Some(513))),
        ("6.1.0-13-amd64", rel(6, 1, 0, Some(13))),
        ("6.8.0", rel(6, 8, 0, None)),
        ("6.10", rel(6, 10, 0, None)),
        ("6.10-rc1", rel(6, 10, 0, None)),
        ("2.6.32.71-generic", rel(2, 6, 32, None)),
        ("5.4.0+", rel(5, 4, 0, None)),
        ("6.6.0_custom", rel(6, 6, 0, None)),
    ];
    for (text, want) in table {
        assert_eq!(parse_release(text).unwrap(), *want, "{text:?}");
    }
}

#[test]
fn rejects_garbage_naming_the_value() {
    let gcc = "Linux version 5.15.0 (gcc version 3.10.0)";
    for bad in [
        "",
        "\n",
        "garbage",
        "v6.1.0",
        "6",
        "6.",
        ".6.1",
        "6..1",
        "1.2.3.4.5",
        "99999999999.1.0",
        "3.10.0-99999999999",
        gcc,
        "6.1.0\0",
        "\u{fffd}\u{0}",
    ] {
        let err = parse_release(bad).unwrap_err();
        assert!(
            matches!(err, KernelError::BadRelease { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(&format!("{bad:?}")),
            "{bad:?}: {err}"
        );
    }
}

fn statuses(checks: &[Check]) -> Vec<(&str, Status)> {
    checks.iter().map(|c| (c.name.as_str(), c.status)).collect()
}

#[test]
#[rustfmt::skip]
fn rules() {
    use Status::*;
    use TunnelType::*;
    let p = Path::new("/h/proc/sys/kernel/osrelease");
    // (release, if_inet6, tunnel, expected (name, status) list)
    type Case<'a> = (&'a str, bool, TunnelType, Vec<(&'a str, Status)>);
    let table: &[Case] = &[
        ("6.1.0-13-amd64", false, Geneve, vec![("kernel", Ok)]),
        ("3.10.0-862.14.4.el7.x86_64", true, Vxlan,
         vec![("kernel", Ok), ("kernel/conntrack-nat", Fail)]),
        ("3.10.0-898.el7.x86_64", true, Geneve,
         vec![("kernel", Ok), ("kernel/conntrack-nat", Ok), ("kernel/geneve-ipv6", Ok)]),
        ("3.10.0-1160.el7.x86_64", false, Geneve,
         vec![("kernel", Ok), ("kernel/conntrack-nat", Ok), ("kernel/geneve-ipv6", Fail)]),
        ("3.10.0-1160.el7.x86_64", false, Vxlan,
         vec![("kernel", Ok), ("kernel/conntrack-nat", Ok)]),
        ("4.18.0-513.el8.x86_64", false, Geneve, vec![("kernel", Ok)]),
        ("3.18.0", false, Geneve, vec![("kernel", Ok), ("kernel/geneve-ipv6", Fail)]),
    ];
    for (raw, inet6, tunnel, want) in table {
        let got = evaluate(p, &std::result::Result::Ok(raw.to_string()), *inet6, *tunnel);
        assert_eq!(statuses(&got), *want, "{raw} {inet6} {tunnel:?}");
        assert_eq!(got[0].detail, *raw);
    }
}

#[test]
fn fix_texts() {
    let p = Path::new("osrelease");
    let nat = evaluate(
        p,
        &Ok("3.10.0-862.14.4.el7.x86_64".into()),
        true,
        TunnelType::Geneve,
    );
    assert_eq!(
        nat[1].fix.as_deref(),
        Some("upgrade the kernel to 3.10.0-898 or later")
    );
    let v6 = evaluate(p, &Ok("3.10.0-1160".into()), false, TunnelType::Geneve);
    assert_eq!(
        v6[2].fix.as_deref(),
        Some("boot with IPv6 enabled: remove ipv6.disable=1 from the kernel command line")
    );
}

#[test]
fn unreadable_or_garbled_is_a_warning_naming_path_and_content() {
    let p = Path::new("/h/proc/sys/kernel/osrelease");
    let got = evaluate(p, &Ok("not a kernel".into()), true, TunnelType::Geneve);
    assert_eq!(statuses(&got), vec![("kernel", Status::Warn)]);
    assert!(
        got[0].detail.contains("/h/proc/sys/kernel/osrelease"),
        "{}",
        got[0].detail
    );
    assert!(
        got[0].detail.contains("\"not a kernel\""),
        "{}",
        got[0].detail
    );

    let dir = tempfile::tempdir().unwrap();
    let read = read_osrelease(dir.path());
    let got = evaluate(p, &read, true, TunnelType::Geneve);
    assert_eq!(statuses(&got), vec![("kernel", Status::Warn)]);
    assert!(
        got[0].detail.contains("proc/sys/kernel/osrelease"),
        "{}",
        got[0].detail
    );
}
