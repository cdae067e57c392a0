//! GNU sparse files in PAX headers (formats 0.0, 0.1 and 1.0, as GNU tar writes them):
//! their real name and size, and where their data chunks go. Every number is checked,
//! since a header may claim anything. (Old GNU sparse entries are expanded by the tar
//! reader itself.)

use std::io::Read;

use super::limits::{MB, METADATA_MAX};

/// A PAX-format GNU sparse file: its real name and size, and where its data chunks go,
/// in order. The entry's data is the chunks, back to back (for 1.0 after the map, which
/// [`pax_sparse`] has already read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PaxSparse {
    pub(super) name: Option<Vec<u8>>,
    pub(super) real_size: u64,
    pub(super) map: Vec<(u64, u64)>,
}

impl PaxSparse {
    /// Bytes of the file that are holes: what the chunks do not cover.
    pub(super) fn holes(&self) -> u64 {
        let data: u64 = self.map.iter().map(|&(_, len)| len).sum();
        self.real_size - data
    }
}

/// Reads the GNU sparse records of an entry's PAX header, and for format 1.0 the map at
/// the start of its data. `Ok(None)`: not a sparse file. Every number is checked: chunks
/// in order, inside the real size, adding up to the data.
pub(super) fn pax_sparse<R: Read>(
    entry: &mut tar::Entry<'_, R>,
) -> Result<Option<PaxSparse>, String> {
    let Some(records) = Records::of(entry)? else {
        return Ok(None);
    };
    let format = records.format()?;
    let real_size = records.real_size(format)?;
    let name = records.get("GNU.sparse.name").map(<[u8]>::to_vec);
    let mut data_size = entry.size();
    let nums = match format {
        Format::V0_0 => records.offsets_and_lengths()?,
        Format::V0_1 => records.map()?,
        Format::V1_0 => {
            let (map, consumed) = read_sparse_map_1_0(entry)?;
            data_size = data_size
                .checked_sub(consumed)
                .ok_or("has a sparse map longer than its data")?;
            map
        }
    };
    let map = checked_map(&nums, real_size, data_size)?;
    Ok(Some(PaxSparse {
        name,
        real_size,
        map,
    }))
}

/// The sparse formats GNU tar writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    V0_0,
    V0_1,
    V1_0,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::V0_0 => "0.0",
            Format::V0_1 => "0.1",
            Format::V1_0 => "1.0",
        }
    }
}

/// An entry's `GNU.sparse.*` PAX records, in order.
struct Records(Vec<(String, Vec<u8>)>);

impl Records {
    /// `Ok(None)`: the entry has no PAX header, or no sparse record in it.
    fn of<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<Records>, String> {
        let malformed = |e: std::io::Error| format!("has a malformed PAX header: {e}");
        let Some(exts) = entry.pax_extensions().map_err(malformed)? else {
            return Ok(None);
        };
        let mut records = Vec::new();
        for ext in exts {
            let ext = ext.map_err(malformed)?;
            if let Ok(key) = ext.key() {
                if key.starts_with("GNU.sparse.") {
                    records.push((key.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        Ok((!records.is_empty()).then_some(Records(records)))
    }

    /// The last value of `key`: a later record overrides an earlier one.
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    fn format(&self) -> Result<Format, String> {
        let version = (self.get("GNU.sparse.major"), self.get("GNU.sparse.minor"));
        Ok(match version {
            (Some(b"1"), Some(b"0")) => Format::V1_0,
            (Some(b"0"), Some(b"1")) => Format::V0_1,
            (Some(b"0"), Some(b"0")) => Format::V0_0,
            (None, None) if self.get("GNU.sparse.map").is_some() => Format::V0_1,
            (None, None) if self.get("GNU.sparse.offset").is_some() => Format::V0_0,
            (major, minor) => {
                return Err(format!(
                    "is a GNU sparse file of an unknown format ({}.{}): refused (GNU tar writes 0.0, 0.1 and 1.0)",
                    String::from_utf8_lossy(major.unwrap_or(b"?")),
                    String::from_utf8_lossy(minor.unwrap_or(b"?"))
                ))
            }
        })
    }

    /// The file's size once its holes are put back.
    fn real_size(&self, format: Format) -> Result<u64, String> {
        let size_key = if format == Format::V1_0 {
            "GNU.sparse.realsize"
        } else {
            "GNU.sparse.size"
        };
        let value = self
            .get(size_key)
            .or_else(|| self.get("GNU.sparse.size"))
            .or_else(|| self.get("GNU.sparse.realsize"))
            .ok_or_else(|| {
                format!(
                    "is a GNU sparse file ({}) without its real size",
                    format.as_str()
                )
            })?;
        number(value, "size")
    }

    /// Format 0.0: one `offset` and one `numbytes` record per chunk, in turn.
    fn offsets_and_lengths(&self) -> Result<Vec<u64>, String> {
        let mut nums = Vec::new();
        for (k, v) in &self.0 {
            match k.as_str() {
                "GNU.sparse.offset" => nums.push(number(v, "offset")?),
                "GNU.sparse.numbytes" => {
                    if nums.len().is_multiple_of(2) {
                        return Err("has a sparse numbytes without its offset".into());
                    }
                    nums.push(number(v, "length")?)
                }
                _ => {}
            }
        }
        Ok(nums)
    }

    /// Format 0.1: one `map` record, offsets and lengths separated by commas.
    fn map(&self) -> Result<Vec<u64>, String> {
        let map = self.get("GNU.sparse.map").unwrap_or(b"");
        if map.is_empty() {
            return Ok(Vec::new());
        }
        map.split(|&b| b == b',')
            .map(|part| number(part, "map entry"))
            .collect()
    }
}

fn number(v: &[u8], what: &str) -> Result<u64, String> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            format!(
                "has a sparse {what} that is not a number: `{}`",
                String::from_utf8_lossy(v)
            )
        })
}

/// Pairs the numbers into chunks (offset, length), checked: in order, not overlapping,
/// inside the real size, and adding up to the data stored.
fn checked_map(nums: &[u64], real_size: u64, data_size: u64) -> Result<Vec<(u64, u64)>, String> {
    if !nums.len().is_multiple_of(2) {
        return Err("has a sparse map with an odd number of values".into());
    }
    let mut map = Vec::with_capacity(nums.len() / 2);
    let mut end = 0u64;
    let mut data = 0u64;
    for pair in nums.chunks_exact(2) {
        let (offset, len) = (pair[0], pair[1]);
        let chunk_end = offset
            .checked_add(len)
            .ok_or("has a sparse chunk past 2^64 bytes")?;
        if offset < end || chunk_end > real_size {
            return Err(format!(
                "has a sparse map with chunks out of order, overlapping or past its real size of {real_size} bytes"
            ));
        }
        end = chunk_end;
        data += len;
        map.push((offset, len));
    }
    if data != data_size {
        return Err(format!(
            "has a sparse map of {data} bytes of data, but {data_size} bytes stored"
        ));
    }
    Ok(map)
}

/// The map at the start of a GNU sparse 1.0 entry's data: decimal numbers, one a line
/// (the count, then offset and length pairs), padded to a 512-byte block. Returns the
/// numbers and the bytes the map took.
fn read_sparse_map_1_0<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<(Vec<u64>, u64), String> {
    let mut block = [0u8; 512];
    let mut consumed = 0u64;
    let mut line: Vec<u8> = Vec::new();
    let mut nums: Vec<u64> = Vec::new();
    let mut wanted: Option<u64> = None;
    loop {
        if wanted.is_some_and(|w| nums.len() as u64 == w) {
            return Ok((nums, consumed));
        }
        if consumed >= METADATA_MAX {
            return Err(format!("has a sparse map over {} MB", METADATA_MAX / MB));
        }
        entry
            .read_exact(&mut block)
            .map_err(|e| format!("has a truncated sparse map: {e}"))?;
        consumed += 512;
        for &b in &block {
            if wanted.is_some_and(|w| nums.len() as u64 == w) {
                break;
            }
            if b != b'\n' {
                if line.len() > 20 {
                    return Err("has a sparse map entry that is not a number".into());
                }
                line.push(b);
                continue;
            }
            let n = std::str::from_utf8(&line)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!(
                        "has a sparse map entry that is not a number: `{}`",
                        String::from_utf8_lossy(&line)
                    )
                })?;
            line.clear();
            match wanted {
                None => {
                    // Count, then 2 numbers per chunk; bounded by the map's own size.
                    let w = n
                        .checked_mul(2)
                        .ok_or("has a sparse map with too many chunks")?;
                    if w > METADATA_MAX / 2 {
                        return Err("has a sparse map with too many chunks".into());
                    }
                    wanted = Some(w);
                }
                Some(_) => nums.push(n),
            }
        }
    }
}
