//! A minimal, deterministic POSIX ustar writer and reader: regular files and directories only,
//! mtime 0, uid/gid 0, so the same input always yields the same bytes (and the same digests).

use std::fmt;

const BLOCK: usize = 512;

/// Why a tar archive could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TarError {
    /// The entry name does not fit the ustar name field (100 bytes, no prefix split here).
    NameTooLong(String),
    /// The archive ended inside a header or a file's data.
    Truncated,
    /// A header's checksum does not match its bytes.
    BadChecksum { offset: usize },
    /// A numeric header field is not octal.
    BadNumber { offset: usize, field: &'static str },
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameTooLong(n) => write!(f, "tar entry name longer than 100 bytes: {n}"),
            Self::Truncated => write!(f, "tar archive is truncated"),
            Self::BadChecksum { offset } => write!(f, "tar header at byte {offset}: bad checksum"),
            Self::BadNumber { offset, field } => {
                write!(f, "tar header at byte {offset}: field {field} is not octal")
            }
        }
    }
}

impl std::error::Error for TarError {}

/// Builds an archive in memory.
#[derive(Default)]
pub struct TarWriter {
    out: Vec<u8>,
}

fn put(dst: &mut [u8], at: usize, src: &[u8]) {
    for (i, b) in src.iter().enumerate() {
        if let Some(slot) = dst.get_mut(at + i) {
            *slot = *b;
        }
    }
}

fn octal(width: usize, value: u64) -> Vec<u8> {
    // width includes the terminating NUL.
    let digits = format!("{value:0w$o}", w = width - 1);
    let mut v = digits.into_bytes();
    v.push(0);
    v
}

impl TarWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, name: &str, size: u64, mode: u64, typeflag: u8) -> Result<(), TarError> {
        if name.len() > 100 {
            return Err(TarError::NameTooLong(name.to_owned()));
        }
        let mut h = [0u8; BLOCK];
        put(&mut h, 0, name.as_bytes());
        put(&mut h, 100, &octal(8, mode));
        put(&mut h, 108, &octal(8, 0)); // uid
        put(&mut h, 116, &octal(8, 0)); // gid
        put(&mut h, 124, &octal(12, size));
        put(&mut h, 136, &octal(12, 0)); // mtime: fixed for reproducible digests
        put(&mut h, 148, &[b' '; 8]); // checksum placeholder
        put(&mut h, 156, &[typeflag]);
        put(&mut h, 257, b"ustar\0");
        put(&mut h, 263, b"00");
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        let mut cks = format!("{sum:06o}").into_bytes();
        cks.push(0);
        cks.push(b' ');
        put(&mut h, 148, &cks);
        self.out.extend_from_slice(&h);
        Ok(())
    }

    /// Appends a regular file (mode 0644).
    pub fn file(&mut self, name: &str, data: &[u8]) -> Result<(), TarError> {
        self.header(name, data.len() as u64, 0o644, b'0')?;
        self.out.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        Ok(())
    }

    /// Appends a directory entry (mode 0755); `name` should end with `/`.
    pub fn dir(&mut self, name: &str) -> Result<(), TarError> {
        self.header(name, 0, 0o755, b'5')
    }

    /// Ends the archive with two zero blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
        self.out
    }
}

/// One entry read back from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub typeflag: u8,
    pub data: Vec<u8>,
}

fn parse_octal(field: &[u8], offset: usize, name: &'static str) -> Result<u64, TarError> {
    let text: Vec<u8> = field
        .iter()
        .copied()
        .take_while(|b| *b != 0)
        .filter(|b| *b != b' ')
        .collect();
    if text.is_empty() {
        return Ok(0);
    }
    let s = std::str::from_utf8(&text).map_err(|_| TarError::BadNumber {
        offset,
        field: name,
    })?;
    u64::from_str_radix(s, 8).map_err(|_| TarError::BadNumber {
        offset,
        field: name,
    })
}

/// Reads every entry of a ustar archive (stops at the first zero block).
pub fn read(archive: &[u8]) -> Result<Vec<Entry>, TarError> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    loop {
        let h = archive.get(at..at + BLOCK).ok_or(TarError::Truncated)?;
        if h.iter().all(|b| *b == 0) {
            return Ok(entries);
        }
        let stored = parse_octal(h.get(148..156).ok_or(TarError::Truncated)?, at, "chksum")?;
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(*b)
                }
            })
            .sum();
        if sum != stored {
            return Err(TarError::BadChecksum { offset: at });
        }
        let name_field = h.get(0..100).ok_or(TarError::Truncated)?;
        let name: String = String::from_utf8_lossy(name_field)
            .trim_end_matches('\0')
            .to_owned();
        let size = parse_octal(h.get(124..136).ok_or(TarError::Truncated)?, at, "size")?;
        let size = usize::try_from(size).map_err(|_| TarError::Truncated)?;
        let typeflag = h.get(156).copied().unwrap_or(0);
        let start = at + BLOCK;
        let data = archive
            .get(start..start + size)
            .ok_or(TarError::Truncated)?
            .to_vec();
        entries.push(Entry {
            name,
            typeflag,
            data,
        });
        at = start + size.div_ceil(BLOCK) * BLOCK;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checksum() {
        let mut w = TarWriter::new();
        w.dir("blobs/").unwrap();
        w.file("blobs/a.txt", b"hello").unwrap();
        w.file("empty", b"").unwrap();
        let bytes = w.finish();
        assert_eq!(bytes.len() % 512, 0);
        let e = read(&bytes).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].name, "blobs/a.txt");
        assert_eq!(e[1].data, b"hello");
        assert_eq!(e[0].typeflag, b'5');
        // A flipped byte in a header is detected.
        let mut bad = bytes.clone();
        bad[5] ^= 1;
        assert_eq!(read(&bad), Err(TarError::BadChecksum { offset: 0 }));
        // Cut short.
        assert_eq!(read(&bytes[..600]), Err(TarError::Truncated));
    }

    #[test]
    fn long_names_are_refused() {
        let mut w = TarWriter::new();
        assert!(w.file(&"x".repeat(101), b"").is_err());
    }
}
