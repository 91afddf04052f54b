//! `portcullis links sign|decode|rotate-key` against a data folder of its own.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portcullis.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = {:?}\n\n[links]\nhost = \"links.example.test\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    (dir, config)
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("links")
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn sign(config: &Path, url: &str) -> String {
    let link = ok(&run(
        config,
        &[
            "sign",
            url,
            "--message",
            "D2107H64DXJG0000",
            "--recipient",
            "alice@example.test",
        ],
    ));
    let link = link.trim().to_string();
    assert!(link.starts_with("https://links.example.test/l/"), "{link}");
    link
}

#[test]
fn sign_then_decode_round_trips_and_survives_rotation() {
    let (dir, config) = setup();
    let url = "https://example.test/reset?user=1&x=ü";
    let link = sign(&config, url);
    let keys = dir.path().join("data/links/keys");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.join("1.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let decoded = ok(&run(&config, &["decode", &link]));
    assert!(decoded.contains(&format!("url: {url}\n")), "{decoded}");
    assert!(decoded.contains("message: D2107H64DXJG0000\n"), "{decoded}");
    assert!(decoded.contains("key: 1\n"), "{decoded}");
    assert!(decoded.contains("issued: 20"), "{decoded}");
    assert!(!decoded.contains("alice"), "{decoded}");
    // The token alone decodes too.
    let token = link.rsplit('/').next().unwrap();
    assert_eq!(ok(&run(&config, &["decode", token])), decoded);

    let rotated = ok(&run(&config, &["rotate-key"]));
    assert!(rotated.starts_with("key 2 "), "{rotated}");
    assert_eq!(ok(&run(&config, &["decode", &link])), decoded);
    let newer = sign(&config, url);
    assert!(ok(&run(&config, &["decode", &newer])).contains("key: 2\n"));

    // Retiring key 1 (removing its file) retires its links.
    std::fs::remove_file(keys.join("1.key")).unwrap();
    let out = run(&config, &["decode", &link]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key 1"), "{err}");
    ok(&run(&config, &["decode", &newer]));
}

#[test]
fn a_tampered_or_foreign_link_exits_1_and_prints_no_url() {
    let (_dir, config) = setup();
    let link = sign(&config, "https://good.example.test/");
    let cut = link.len() - 10;
    let swap = if &link[cut..cut + 1] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swap}{}", &link[..cut], &link[cut + 1..]);
    for bad in [tampered.as_str(), "https://links.example.test/l/AAAA", "x"] {
        let out = run(&config, &["decode", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(out.stdout.is_empty(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a valid link"), "{err}");
    }

    // Another site's keys do not verify this site's links.
    let (_other_dir, other) = setup();
    sign(&other, "https://x.example.test/");
    let out = run(&other, &["decode", &link]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature does not match"));
}

#[test]
fn decode_makes_no_keys_and_sign_refuses_what_it_cannot_sign() {
    let (dir, config) = setup();
    let out = run(&config, &["decode", "AAAA"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no link key"));
    assert!(!dir.path().join("data/links/keys").exists());

    let out = run(
        &config,
        &[
            "sign",
            "javascript:alert(1)",
            "--message",
            "m",
            "--recipient",
            "r@x.test",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());

    let bare = dir.path().join("bare.toml");
    std::fs::write(&bare, "").unwrap();
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(&bare)
        .args([
            "links",
            "sign",
            "https://x.test/",
            "--message",
            "m",
            "--recipient",
            "r@x.test",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("links.host"));

    std::fs::write(&bare, "[links]\nenabled = true\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&bare)
        .args(["links", "rotate-key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a configuration error");
}

#[test]
fn rewriting_without_a_link_host_or_with_a_bad_arc_name_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portcullis.toml");
    for (links, key) in [
        ("enabled = true\n", "links.host"),
        (
            "enabled = true\nhost = \"links.example.test\"\narc_selector = \"a b\"\n",
            "links.arc_selector",
        ),
        (
            "enabled = true\nhost = \"links.example.test\"\nvendor_links = \"sometimes\"\n",
            "vendor_links",
        ),
    ] {
        std::fs::write(
            &config,
            format!(
                "[server]\ndata_dir = \"{}\"\n[links]\n{links}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["links", "rotate-key"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{links}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(key),
            "{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
