//! The container log on disk: what the shim writes and the daemon reads.
//!
//! One text file, `container.log`, one entry per line in the CRI log
//! format (the one kubelet and containerd write):
//!
//! ```text
//! 2026-11-30T01:35:21.123456789Z stdout F hello
//! 2026-11-30T01:35:21.123460000Z stderr P a line longer than 16 KiB, cont…
//! ```
//!
//! `F` ends a line (its newline is not stored), `P` is a piece of a line
//! continued by the next entry of the same stream. Entries are appended
//! with one `write` each; a crash can only leave a torn last line, which
//! readers skip (they yield only newline-terminated entries). Rotation
//! (Docker's json-file `max-size`/`max-file`) renames `container.log` to
//! `container.log.1`, `.1` to `.2` and so on, and starts a new file; `.N`
//! is the oldest.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::shim_files::LogOptions;

/// The current log file's name in the container directory.
pub const LOG_FILE: &str = "container.log";

/// Docker splits lines longer than this into partial entries.
const MAX_LINE: usize = 16 * 1024;

/// Which of the container's output streams an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One parsed log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// RFC 3339 UTC with nanoseconds (fixed width: compares as text).
    pub timestamp: &'a str,
    pub stream: Stream,
    /// A piece of a longer line: no newline after `content`.
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parse one line of a log file (with or without its newline).
pub fn parse_entry(line: &[u8]) -> Option<Entry<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut parts = line.splitn(4, |b| *b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"F" => false,
        b"P" => true,
        _ => return None,
    };
    Some(Entry {
        timestamp,
        stream,
        partial,
        content: parts.next().unwrap_or_default(),
    })
}

/// Appends entries to `container.log`, rotating by rename.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    opts: LogOptions,
    file: File,
    size: u64,
}

fn open_append(path: &Path) -> io::Result<File> {
    crate::shim_files::private_file()
        .create(true)
        .append(true)
        .open(path)
}

impl LogWriter {
    /// Continue the log in `dir` (a restarted container appends).
    pub fn open(dir: &Path, opts: LogOptions) -> io::Result<LogWriter> {
        let file = open_append(&dir.join(LOG_FILE))?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            opts,
            file,
            size,
        })
    }

    /// Append one entry stamped `at`.
    pub fn write(
        &mut self,
        stream: Stream,
        content: &[u8],
        partial: bool,
        at: SystemTime,
    ) -> io::Result<()> {
        let mut line = Vec::with_capacity(content.len() + 40);
        line.extend_from_slice(format_timestamp(at).as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.name().as_bytes());
        line.extend_from_slice(if partial { b" P " } else { b" F " });
        line.extend_from_slice(content);
        line.push(b'\n');
        if let Some(max) = self.opts.max_size
            && self.size > 0
            && self.size + line.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let current = self.dir.join(LOG_FILE);
        let numbered = |n: u32| self.dir.join(format!("{LOG_FILE}.{n}"));
        if self.opts.max_file <= 1 {
            // Replace the file in one rename, so a reader never finds none.
            let fresh = self.dir.join(format!("{LOG_FILE}.new"));
            crate::shim_files::private_file()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&fresh)?;
            std::fs::rename(&fresh, &current)?;
        } else {
            for n in (1..self.opts.max_file - 1).rev() {
                match std::fs::rename(numbered(n), numbered(n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&current, numbered(1))?;
        }
        self.file = open_append(&current)?;
        self.size = 0;
        Ok(())
    }
}

/// Cuts a stream's bytes into entries: whole lines, and pieces of at most
/// 16 KiB of longer ones.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
}

impl LineBuffer {
    /// Add `data`; `emit(content, partial)` gets each finished entry.
    pub fn push(
        &mut self,
        data: &[u8],
        emit: &mut dyn FnMut(&[u8], bool) -> io::Result<()>,
    ) -> io::Result<()> {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|b| *b == b'\n') {
            emit(&self.buf[start..start + nl], false)?;
            start += nl + 1;
        }
        while self.buf.len() - start >= MAX_LINE {
            emit(&self.buf[start..start + MAX_LINE], true)?;
            start += MAX_LINE;
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// The stream ended: what is left is a last line without newline.
    pub fn finish(
        &mut self,
        emit: &mut dyn FnMut(&[u8], bool) -> io::Result<()>,
    ) -> io::Result<()> {
        if !self.buf.is_empty() {
            emit(&self.buf, true)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// The log files of a container, oldest first.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name
                .to_str()?
                .strip_prefix(LOG_FILE)?
                .strip_prefix('.')?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    files.push(dir.join(LOG_FILE));
    files
}

/// Reads a container's log from its oldest entry and then follows the
/// current file across rotations.
#[derive(Debug)]
pub struct LogReader {
    dir: PathBuf,
    current: Option<(BufReader<File>, u64)>,
    pending: Vec<u8>,
}

fn read_lines(
    r: &mut impl BufRead,
    pending: &mut Vec<u8>,
    emit: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    loop {
        let n = r.read_until(b'\n', pending)?;
        if n == 0 {
            return Ok(());
        }
        if pending.ends_with(b"\n") {
            emit(pending)?;
            pending.clear();
        }
    }
}

impl LogReader {
    /// Read every complete entry present now, oldest first, each with its
    /// newline; the reader then stands at the end of the current file.
    pub fn read_all(
        dir: &Path,
        emit: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<LogReader> {
        let mut files = log_files(dir);
        let current = files.pop();
        for f in files {
            match File::open(&f) {
                Ok(file) => {
                    let mut pending = Vec::new();
                    read_lines(&mut BufReader::new(file), &mut pending, emit)?;
                }
                // Rotated away while we listed: its entries moved on.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut reader = LogReader {
            dir: dir.to_path_buf(),
            current: None,
            pending: Vec::new(),
        };
        if let Some(path) = current {
            reader.open_current(&path)?;
        }
        reader.poll(emit)?;
        Ok(reader)
    }

    fn open_current(&mut self, path: &Path) -> io::Result<bool> {
        match File::open(path) {
            Ok(f) => {
                let ino = f.metadata()?.ino();
                self.current = Some((BufReader::new(f), ino));
                self.pending.clear();
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Emit entries written since the last call, following a rotation.
    pub fn poll(&mut self, emit: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let path = self.dir.join(LOG_FILE);
        if let Some((r, _)) = self.current.as_mut() {
            read_lines(r, &mut self.pending, emit)?;
        }
        let on_disk = std::fs::metadata(&path).ok().map(|m| m.ino());
        let ours = self.current.as_ref().map(|(_, ino)| *ino);
        if on_disk.is_some()
            && on_disk != ours
            && self.open_current(&path)?
            && let Some((r, _)) = self.current.as_mut()
        {
            read_lines(r, &mut self.pending, emit)?;
        }
        Ok(())
    }
}

/// Read the whole log as (stdout, stderr) text; for `run` without `-d`.
pub fn read_streams(dir: &Path) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    LogReader::read_all(dir, &mut |line| {
        if let Some(e) = parse_entry(line) {
            let to = match e.stream {
                Stream::Stdout => &mut out,
                Stream::Stderr => &mut err,
            };
            to.extend_from_slice(e.content);
            if !e.partial {
                to.push(b'\n');
            }
        }
        Ok(())
    })?;
    Ok((out, err))
}

/// `at` as RFC 3339 UTC with nanoseconds, fixed width:
/// `2026-11-30T01:35:21.123456789Z`.
pub fn format_timestamp(at: SystemTime) -> String {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_nanos()
    )
}

/// Parse an RFC 3339 time (`2026-11-30T01:35:21Z`, fractions and `+HH:MM`
/// offsets allowed) to a point in time.
pub fn parse_timestamp(s: &str) -> Option<SystemTime> {
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut padded: String = frac[..digits.min(9)].to_string();
        while padded.len() < 9 {
            padded.push('0');
        }
        nanos = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let oh: i64 = o[1..3].parse().ok()?;
            let om: i64 = o[4..6].parse().ok()?;
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (y, m, d).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_796_002_521, 123_456_789);
        let s = format_timestamp(t);
        assert_eq!(s, "2026-11-30T01:35:21.123456789Z");
        assert_eq!(parse_timestamp(&s), Some(t));
        assert_eq!(
            parse_timestamp("2026-11-30T03:35:21.123456789+02:00"),
            Some(t)
        );
        assert_eq!(
            format_timestamp(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            parse_timestamp("2024-02-29T00:00:00Z")
                .map(format_timestamp)
                .as_deref(),
            Some("2024-02-29T00:00:00.000000000Z")
        );
        for bad in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-30T01:35:21",
            "2026-11-30T01:35:21.Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn lines_split_and_partial() {
        let mut b = LineBuffer::default();
        let mut got: Vec<(Vec<u8>, bool)> = Vec::new();
        let mut emit = |c: &[u8], p: bool| {
            got.push((c.to_vec(), p));
            Ok(())
        };
        b.push(b"one\ntw", &mut emit).unwrap();
        b.push(b"o\n", &mut emit).unwrap();
        b.push(&vec![b'x'; MAX_LINE + 3], &mut emit).unwrap();
        b.finish(&mut emit).unwrap();
        assert_eq!(got[0], (b"one".to_vec(), false));
        assert_eq!(got[1], (b"two".to_vec(), false));
        assert_eq!(got[2], (vec![b'x'; MAX_LINE], true));
        assert_eq!(got[3], (b"xxx".to_vec(), true));
    }

    #[test]
    fn log_files_are_private_through_rotations() {
        // The output can hold secrets: no local user reads it, whatever
        // the umask, in every file rotation makes.
        use std::os::unix::fs::PermissionsExt;
        for max_file in [1, 3] {
            let dir = tempfile::tempdir().unwrap();
            let opts = LogOptions {
                max_size: Some(100),
                max_file,
            };
            let mut w = LogWriter::open(dir.path(), opts).unwrap();
            for _ in 0..10 {
                w.write(Stream::Stdout, b"a secret line", false, SystemTime::now())
                    .unwrap();
            }
            for e in std::fs::read_dir(dir.path()).unwrap() {
                let p = e.unwrap().path();
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} (max_file {max_file})", p.display());
            }
        }
    }

    #[test]
    fn rotation_keeps_max_file_and_reads_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LogOptions {
            max_size: Some(200),
            max_file: 3,
        };
        let mut w = LogWriter::open(dir.path(), opts).unwrap();
        for i in 0..100 {
            let s = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            w.write(
                s,
                format!("line {i:03}").as_bytes(),
                false,
                SystemTime::now(),
            )
            .unwrap();
        }
        let files = log_files(dir.path());
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 200);
        }
        let mut seen = Vec::new();
        LogReader::read_all(dir.path(), &mut |l| {
            let e = parse_entry(l).unwrap();
            seen.push(String::from_utf8_lossy(e.content).into_owned());
            Ok(())
        })
        .unwrap();
        assert!(seen.len() > 3 && seen.len() < 100);
        assert_eq!(seen.last().map(String::as_str), Some("line 099"));
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "entries out of order");
    }

    #[test]
    fn follow_crosses_a_rotation_and_skips_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LogOptions {
            max_size: Some(120),
            max_file: 2,
        };
        let mut w = LogWriter::open(dir.path(), opts).unwrap();
        w.write(Stream::Stdout, b"first", false, SystemTime::now())
            .unwrap();
        let mut seen: Vec<String> = Vec::new();
        let mut emit = |l: &[u8]| {
            seen.push(String::from_utf8_lossy(parse_entry(l).unwrap().content).into_owned());
            Ok(())
        };
        let mut r = LogReader::read_all(dir.path(), &mut emit).unwrap();
        w.write(Stream::Stdout, b"second", false, SystemTime::now())
            .unwrap();
        w.write(Stream::Stdout, b"third", false, SystemTime::now())
            .unwrap();
        r.poll(&mut emit).unwrap();
        // A torn write (crash) is not an entry.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG_FILE))
            .unwrap()
            .write_all(b"2026-11-30T01:35:21.1")
            .unwrap();
        r.poll(&mut emit).unwrap();
        assert_eq!(seen, ["first", "second", "third"]);
    }
}
