//! What Lambda's own values look like, for the tests that check that scar gives the same.

/// Asserts that `id` has the form of Lambda's trace header:
/// `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0`.
#[track_caller]
pub fn assert_trace_id(id: &str) {
    let parts: Vec<&str> = id.split(';').collect();
    assert_eq!(parts.len(), 3, "{id}");
    let root: Vec<&str> = parts[0].strip_prefix("Root=").unwrap().split('-').collect();
    assert_eq!(
        (root[0], root[1].len(), root[2].len()),
        ("1", 8, 24),
        "{id}"
    );
    assert_eq!(
        parts[1].strip_prefix("Parent=").map(str::len),
        Some(16),
        "{id}"
    );
    assert_eq!(parts[2], "Sampled=0", "{id}");
}
