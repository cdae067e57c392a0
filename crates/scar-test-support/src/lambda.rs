//! What Lambda's own values look like, for the tests that check that scar gives the same.

/// Asserts that `id` has the form of Lambda's trace header:
/// `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0`.
#[track_caller]
pub fn assert_trace_id(id: &str) {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let fields: Vec<(&str, &str)> = id
        .split(';')
        .map(|f| f.split_once('=').unwrap_or((f, "")))
        .collect();
    let [("Root", root), ("Parent", parent), ("Sampled", "0")] = fields[..] else {
        panic!("not Lambda's trace header: {id}");
    };
    // Root=1-<epoch seconds, 8 hex>-<24 hex>
    let root: Vec<&str> = root.split('-').collect();
    assert!(
        matches!(root[..], ["1", time, unique] if hex(time, 8) && hex(unique, 24)),
        "{id}"
    );
    assert!(hex(parent, 16), "{id}");
}
