//! The console's Sending servers view in a real browser: Debian's chromium,
//! driven by playwright-core (`tests/browser/servers.mjs`), against the real
//! binary. The servers are written into the gateway's store as the writer
//! thread would have recorded them: an external Exchange server out of
//! support for 45 days (throttled 25% by the default schedule), one of the
//! organisation's own out of date, and one whose host name is markup.
//!
//! An administrator is warned about the own server on every page, sees the
//! external one's stage, pauses it for 10 days, resumes it, is refused a
//! pause beyond the yearly allowance, pauses it again and exempts it; the
//! store has the pauses, the exemption and the audit lines. A user gets no
//! view and 403 from the API; the hostile host name stays text.
//!
//! The picture goes to a temporary folder; to refresh the one in the
//! repository: `SERVERS_SCREENSHOTS=docs/screenshots cargo nextest run -p
//! portcullis --test servers_console`.
//!
//! A missing browser, node or playwright-core fails the test with the install
//! hint: `scripts/install-peers.sh`.

mod common;
use common::{browser_tools, repo, Gateway, CHROMIUM};
use rusqlite::params;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PASSWORD: &str = "correct horse battery staple";
const DAY_MS: i64 = 86_400_000;
const EXTERNAL: &str = "bank.test/ex01.bank.test";
const OWN: &str = "(own)/ex02";
const HOSTILE_HOST: &str = "<img src=x onerror=alert(1)>";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Server<'a> {
    key: &'a str,
    own: bool,
    version: &'a str,
    release: &'a str,
    status: &'a str,
    reason: &'a str,
    recommended: &'a str,
    detected_days_ago: i64,
    connections: i64,
}

/// Writes a server into the store as the writer thread records sightings.
fn insert(db: &rusqlite::Connection, s: &Server<'_>) {
    let now = now_ms();
    let (org, host) = s.key.split_once('/').unwrap();
    db.execute(
        "INSERT INTO sender_servers (key, org, host, own, product, version, release, status, \
         reason, recommended, first_detected, first_seen, last_seen, messages, connections, \
         exempt, last_field, last_message) \
         VALUES (?1, ?2, ?3, ?4, 'exchange', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 0, ?15, 'M1')",
        params![
            s.key,
            org,
            host,
            s.own,
            s.version,
            s.release,
            s.status,
            s.reason,
            s.recommended,
            now - s.detected_days_ago * DAY_MS,
            now - 120 * DAY_MS,
            now - 3_600_000,
            s.connections * 3,
            s.connections,
            format!("Received: from a.{org} by {host} with Microsoft SMTP Server id {}", s.version),
        ],
    )
    .expect("insert a sending server");
}

#[test]
fn an_admin_sees_pauses_and_exempts_sending_servers_and_a_user_cannot() {
    let node = browser_tools();
    let h = common::password_hash(PASSWORD);
    // Loopback is not trusted: the browser runs on this host, and must sign in.
    let gw = Gateway::start(
        "",
        &format!(
            "trust_loopback = false\n\
             [[domains]]\nname = \"example.test\"\ndeliver_to = \"smtp://127.0.0.1:9\"\n\
             [[users]]\nname = \"root\"\npassword_hash = \"{h}\"\nrole = \"admin\"\n\
             [[users]]\nname = \"alice@example.test\"\npassword_hash = \"{h}\"\n"
        ),
    );
    let db = rusqlite::Connection::open(gw.data().join("trace.sqlite")).expect("open the store");
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let hostile = format!("evil.test/{HOSTILE_HOST}");
    for s in [
        Server {
            key: EXTERNAL,
            own: false,
            version: "15.1.2507.6",
            release: "Exchange Server 2016 CU23",
            status: "unsupported",
            reason: "Exchange Server 2016 is out of support since 2025-10-14",
            recommended: "Exchange Server SE RTM (15.2.2562.17)",
            detected_days_ago: 45,
            connections: 12,
        },
        Server {
            key: OWN,
            own: true,
            version: "15.2.1118.7",
            release: "Exchange Server 2019 CU12",
            status: "outdated",
            reason: "Exchange Server 2019 CU12 is no longer serviced",
            recommended: "Exchange Server SE RTM (15.2.2562.17)",
            detected_days_ago: 20,
            connections: 0,
        },
        Server {
            key: &hostile,
            own: false,
            version: "15.1.2375.7",
            release: "Exchange Server 2016 CU22",
            status: "outdated",
            reason: "superseded by CU23",
            recommended: "Exchange Server SE RTM (15.2.2562.17)",
            detected_days_ago: 3,
            connections: 1,
        },
    ] {
        insert(&db, &s);
    }

    // Without a session the API is closed.
    let (status, _) = gw.http_get("/api/servers");
    assert_eq!(status, 401);

    let shots = match std::env::var_os("SERVERS_SCREENSHOTS") {
        Some(dir) => repo().join(dir),
        None => gw.dir.path().join("screenshots"),
    };
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let shot = shots.join("servers.png");
    let out = Command::new(node)
        .arg(repo().join("tests/browser/servers.mjs"))
        .env("SERVERS_URL", format!("http://127.0.0.1:{}", gw.http))
        .env("SERVERS_PASSWORD", PASSWORD)
        .env("SERVERS_ADMIN", "root")
        .env("SERVERS_USER", "alice@example.test")
        .env("SERVERS_EXTERNAL", EXTERNAL)
        .env("SERVERS_OWN_HOST", "ex02")
        .env("SERVERS_HOSTILE", &hostile)
        .env("SERVERS_SHOT", &shot)
        .env("CHROMIUM", CHROMIUM)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the browser run failed:\n{said}\n{}",
        gw.log()
    );
    assert!(said.contains("servers: all steps passed"), "{said}");
    println!("{said}");
    let summary: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("servers: {").map(|j| format!("{{{j}")))
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_else(|| panic!("no summary from the browser run:\n{said}"));
    assert_eq!(summary["mode"], "enforce", "{summary:#}");
    assert_eq!(summary["own_out_of_date"], 1, "{summary:#}");
    assert_eq!(summary["user_status"], 403, "{summary:#}");
    assert_eq!(summary["paused"]["stage"], "throttle 25%", "{summary:#}");
    assert_eq!(summary["exempt"]["exempt"], true, "{summary:#}");

    // The store has what the admin did: two pauses (the first ended by
    // Resume; the one over the allowance was refused), the exemption, and an
    // audit line for each change.
    let pauses: Vec<(i64, i64, String)> = db
        .prepare(
            "SELECT from_ms, until_ms, actor FROM sender_pauses WHERE key = ? ORDER BY from_ms",
        )
        .unwrap()
        .query_map([EXTERNAL], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(pauses.len(), 2, "{pauses:?}");
    assert!(
        pauses[0].1 - pauses[0].0 < 10 * DAY_MS,
        "not resumed: {pauses:?}"
    );
    assert_eq!(pauses[1].1 - pauses[1].0, 10 * DAY_MS, "{pauses:?}");
    assert!(
        pauses.iter().all(|p| p.2.starts_with("root@")),
        "{pauses:?}"
    );
    let exempt: bool = db
        .query_row(
            "SELECT exempt FROM sender_servers WHERE key = ?",
            [EXTERNAL],
            |r| r.get(0),
        )
        .unwrap();
    assert!(exempt);
    let audit: Vec<String> = db
        .prepare("SELECT action FROM audit WHERE target = ? ORDER BY at, rowid")
        .unwrap()
        .query_map([EXTERNAL], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        audit,
        [
            "pause sending server",
            "resume sending server",
            "pause sending server",
            "exempt sending server"
        ]
    );

    let png = std::fs::read(&shot).expect("servers.png");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
}
