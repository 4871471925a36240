//! Reading the files a user names (suites, noise profiles, recordings): regular files of a
//! sane size only, so a path such as `/dev/zero` or a named pipe is an error, not a hang.

use std::io::Read;
use std::path::Path;

/// Suites and noise profiles: far above any real one.
pub const TEXT_LIMIT: u64 = 8 << 20;
/// Recordings: an hour of 48 kHz stereo float WAV is ~1.4 GB; speech fixtures are far smaller.
pub const AUDIO_LIMIT: u64 = 1 << 30;
/// A run's `results.jsonl`: about 5 KB a call.
pub const RESULTS_LIMIT: u64 = 1 << 30;

/// The whole file, if it is a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > limit {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than the {} this kind of file may have",
            meta.len(),
            limit
        )));
    }
    let mut bytes = Vec::new();
    // The size can change under us; never read past the limit.
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// As [`read`], as UTF-8 text.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read(path, TEXT_LIMIT)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_folders_are_refused_files_are_read() {
        assert!(read(Path::new("/dev/zero"), 10).is_err());
        assert!(read(Path::new("/"), 10).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "name: x\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "name: x\n");
        assert!(read(&path, 3).is_err(), "over the limit");
    }
}
