//! The SQL schema, applied at open. Each statement is idempotent.

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id          TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    status      TEXT NOT NULL,
    client_ip   TEXT,
    helo        TEXT,
    tls         TEXT,
    auth_user   TEXT,
    mail_from   TEXT NOT NULL,
    size        INTEGER,
    message_id  TEXT,
    subject     TEXT,
    reason      TEXT
);
CREATE INDEX IF NOT EXISTS messages_received ON messages(received_at);
CREATE INDEX IF NOT EXISTS messages_message_id ON messages(message_id);
CREATE INDEX IF NOT EXISTS messages_from ON messages(mail_from);
CREATE INDEX IF NOT EXISTS messages_from_nocase ON messages(mail_from COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS recipients (
    message    TEXT NOT NULL,
    address    TEXT NOT NULL,
    status     TEXT NOT NULL,
    reply      TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (message, address)
);
CREATE INDEX IF NOT EXISTS recipients_address ON recipients(address);
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    message TEXT NOT NULL,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_message ON events(message);
CREATE TABLE IF NOT EXISTS symbols (
    message TEXT NOT NULL,
    name    TEXT NOT NULL,
    score   REAL NOT NULL,
    PRIMARY KEY (message, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name, message);
CREATE TABLE IF NOT EXISTS held (
    message     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    status      TEXT NOT NULL,
    prev_status TEXT,
    reason      TEXT,
    expires_at  INTEGER NOT NULL,
    pinned      INTEGER NOT NULL DEFAULT 0,
    release_id  TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (message, recipient)
);
-- Addresses are compared without case (the list filters do).
CREATE INDEX IF NOT EXISTS held_recipient ON held(recipient COLLATE NOCASE, received_at);
CREATE INDEX IF NOT EXISTS held_received ON held(received_at);
CREATE INDEX IF NOT EXISTS held_status_expires ON held(status, expires_at);
CREATE TABLE IF NOT EXISTS audit (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    count  INTEGER NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash    TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    role       TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE TABLE IF NOT EXISTS models (
    name       TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
-- Digests (portcullis-digest): links of sent digests that were used (each
-- acts once; forgotten after the link's own expiry), each recipient's allowed
-- and blocked senders, and when digests last went out. When each held entry
-- was listed is in held.listed_at / held.expiring_listed_at (ADDED_COLUMNS).
CREATE TABLE IF NOT EXISTS digest_links_used (
    nonce      TEXT PRIMARY KEY,
    used_at    INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sender_rules (
    recipient  TEXT NOT NULL COLLATE NOCASE,
    sender     TEXT NOT NULL COLLATE NOCASE,
    rule       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    PRIMARY KEY (recipient, sender)
);
CREATE TABLE IF NOT EXISTS digest_state (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Secure links (clicks.rs): which message carried which original URL behind
-- its secure links, and every click, both by URL and by host, so that a URL or
-- domain that turns bad leads to who received it and who followed it.
CREATE TABLE IF NOT EXISTS link_urls (
    url     TEXT NOT NULL,
    host    TEXT NOT NULL,
    message TEXT NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (url, message)
);
CREATE INDEX IF NOT EXISTS link_urls_host ON link_urls(host);
CREATE TABLE IF NOT EXISTS link_clicks (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    url            TEXT NOT NULL,
    host           TEXT NOT NULL,
    message        TEXT NOT NULL,
    at             INTEGER NOT NULL,
    verdict        TEXT NOT NULL,
    recipient_hash TEXT NOT NULL,
    client_ip      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS link_clicks_url ON link_clicks(url);
CREATE INDEX IF NOT EXISTS link_clicks_host ON link_clicks(host);
-- Sending servers (servers.rs): what each sending organisation's servers run,
-- as recognised in their Received fields, since when they are out of date,
-- and the admins' pauses and exemptions of the staged enforcement.
CREATE TABLE IF NOT EXISTS sender_servers (
    key            TEXT PRIMARY KEY,
    org            TEXT NOT NULL,
    host           TEXT NOT NULL,
    own            INTEGER NOT NULL DEFAULT 0,
    product        TEXT NOT NULL,
    version        TEXT NOT NULL,
    release        TEXT,
    status         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    recommended    TEXT,
    first_detected INTEGER,
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    messages       INTEGER NOT NULL DEFAULT 0,
    connections    INTEGER NOT NULL DEFAULT 0,
    exempt         INTEGER NOT NULL DEFAULT 0,
    last_field     TEXT NOT NULL,
    last_message   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sender_servers_status ON sender_servers(status);
CREATE TABLE IF NOT EXISTS sender_pauses (
    key        TEXT NOT NULL,
    from_ms    INTEGER NOT NULL,
    until_ms   INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sender_pauses_key ON sender_pauses(key);
";

/// Columns added after the first release, added to older databases at open.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("messages", "score", "REAL"),
    ("messages", "action", "TEXT"),
    ("messages", "category", "TEXT"),
    // When a digest listed the entry to its recipient, and as expiring.
    ("held", "listed_at", "INTEGER"),
    ("held", "expiring_listed_at", "INTEGER"),
];

/// Brings an older database up to the current schema.
pub fn migrate(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?"),
            [column],
            |row| row.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}
