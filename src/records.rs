//! Sequence records from files, streamed: FASTA and FASTQ (multi-line records, Windows
//! line ends; parsed by `needletail`), or plain text with one sequence per line; each
//! plain or gzip-compressed (bgzip too: gzip of many members), detected from the
//! content, not the name. Memory stays flat whatever the file size: one record is in
//! memory at a time.
//!
//! What a record's bases become is the tokenizer's business ([`Record::text`]): the HF
//! HyenaDNA tokenizer maps lower case (soft-masked bases) to `[UNK]`, so by default
//! the bases are kept as they are; [`Case::Upper`] folds them first.

use crate::error::{Error, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// One sequence of an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The FASTA/FASTQ id (the header up to the first space or tab), or `line N` for
    /// plain text.
    pub id: String,
    /// The bases (or characters), line breaks removed.
    pub seq: Vec<u8>,
}

/// Whether bases are case-folded before tokenizing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Case {
    /// As in the file: what the HF tokenizer does (lower case becomes `[UNK]` for
    /// HyenaDNA's vocabulary), so results match the original model.
    #[default]
    Keep,
    /// Upper case first: soft-masked (lower-case) bases count as bases.
    Upper,
}

impl Record {
    /// The record's text for the tokenizer, case-folded as `case` says. Bytes that are
    /// not UTF-8 become U+FFFD (the tokenizer's `[UNK]`).
    pub fn text(&self, case: Case) -> String {
        case.apply(&String::from_utf8_lossy(&self.seq))
    }
}

impl Case {
    /// `text` folded as this says.
    pub fn apply(self, text: &str) -> String {
        match self {
            Case::Keep => text.to_string(),
            Case::Upper => text.to_ascii_uppercase(),
        }
    }

    /// [`Case::Upper`] where `upper`, else [`Case::Keep`].
    pub fn upper_if(upper: bool) -> Self {
        if upper {
            Case::Upper
        } else {
            Case::Keep
        }
    }
}

/// The layout of an input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `>` headers.
    Fasta,
    /// `@` headers with qualities.
    Fastq,
    /// One sequence per line.
    Lines,
}

/// The records of one file, in order ([`Records::open`]).
pub struct Records {
    path: PathBuf,
    format: Format,
    source: Source,
    /// Records read so far (for messages).
    count: usize,
}

enum Source {
    Fastx(Box<dyn needletail::FastxReader>),
    Lines(std::io::Lines<Box<dyn BufRead + Send>>),
    Empty,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("count", &self.count)
            .finish()
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Records {
    /// Opens `path` (plain or gzip) and detects its format from the first byte of its
    /// content: `>` FASTA, `@` FASTQ, anything else one sequence per line.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut raw = BufReader::new(file);
        let compressed = raw.fill_buf().map_err(io)?.starts_with(&GZIP_MAGIC);
        let mut reader: Box<dyn BufRead + Send> = if compressed {
            Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(raw)))
        } else {
            Box::new(raw)
        };
        let first = reader.fill_buf().map_err(io)?.first().copied();
        let format = match first {
            Some(b'>') => Format::Fasta,
            Some(b'@') => Format::Fastq,
            _ => Format::Lines,
        };
        let source = match (format, first) {
            (_, None) => Source::Empty,
            (Format::Lines, _) => Source::Lines(reader.lines()),
            _ => Source::Fastx(
                needletail::parse_fastx_reader(reader)
                    .map_err(|e| Error::input(format!("{}: {e}", path.display())))?,
            ),
        };
        Ok(Records {
            path: path.to_path_buf(),
            format,
            source,
            count: 0,
        })
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }
}

impl Iterator for Records {
    type Item = Result<Record>;

    /// The next record. A malformed FASTA/FASTQ record or a read error is an error
    /// naming the file and the record; the records after it are not read (a parser
    /// cannot know where the next one starts).
    fn next(&mut self) -> Option<Result<Record>> {
        let item = match &mut self.source {
            Source::Empty => return None,
            Source::Fastx(reader) => match reader.next()? {
                Ok(r) => Ok(Record {
                    id: first_word(r.id()),
                    seq: r.seq().into_owned(),
                }),
                Err(e) => Err(Error::input(format!(
                    "{}: record {}: {e}",
                    self.path.display(),
                    self.count + 1
                ))),
            },
            Source::Lines(lines) => {
                let line = lines.next()?;
                let n = self.count + 1;
                line.map(|l| Record {
                    id: format!("line {n}"),
                    seq: l.trim_end_matches('\r').as_bytes().to_vec(),
                })
                .map_err(|source| Error::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        if item.is_err() {
            // Nothing after a parse or read error can be trusted.
            self.source = Source::Empty;
        }
        self.count += 1;
        Some(item)
    }
}

/// The id in a FASTA/FASTQ header: up to the first space or tab.
fn first_word(header: &[u8]) -> String {
    let end = header
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(header.len());
    String::from_utf8_lossy(&header[..end]).into_owned()
}

/// One window of a sequence too long for the model: its tokens `start..end`, and the
/// first token it scores, `keep` (the tokens before were scored by earlier windows,
/// with more left context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First token of the window.
    pub start: usize,
    /// One past its last token.
    pub end: usize,
    /// The first predicted token this window scores (`start < keep <= end`).
    pub keep: usize,
}

/// The windows of at most `width` tokens, `stride` apart, over a sequence of `n`
/// tokens: every predicted token j (1 <= j < n) is scored exactly once, by the first
/// window that holds both j and j - 1, which is the one giving it the most left
/// context. One window when `n <= width`. Fails unless `1 <= stride < width`.
pub fn windows(n: usize, width: usize, stride: usize) -> Result<Vec<Window>> {
    if stride == 0 || stride >= width {
        return Err(Error::input(format!(
            "windows of {width} tokens need a stride from 1 to {}, not {stride}",
            width.saturating_sub(1)
        )));
    }
    let (mut out, mut start, mut keep) = (Vec::new(), 0, 1);
    loop {
        let end = (start + width).min(n);
        out.push(Window { start, end, keep });
        if end >= n {
            return Ok(out);
        }
        // The next window starts at most width - 1 on, so it holds token end - 1.
        keep = end;
        start += stride;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every predicted token of every length is scored once, by a window holding it
    /// and the token before, with the most left context any window gives it.
    #[test]
    fn windows_score_every_token_once_with_the_most_context() {
        for (width, stride) in [(2, 1), (5, 2), (8, 7), (16, 5)] {
            for n in 1..60 {
                let w = windows(n, width, stride).expect("windows");
                let mut owner = vec![None; n];
                for (k, win) in w.iter().enumerate() {
                    assert!(win.end - win.start <= width && win.start < win.keep.max(1));
                    for (j, o) in owner.iter_mut().enumerate().take(win.end).skip(win.keep) {
                        assert!(o.is_none(), "token {j} scored twice");
                        *o = Some(k);
                    }
                }
                for (j, o) in owner.iter().enumerate().skip(1) {
                    let k = o.unwrap_or_else(|| panic!("n={n}: token {j} not scored"));
                    let best = w
                        .iter()
                        .filter(|x| x.start < j && j < x.end)
                        .map(|x| j - x.start)
                        .max();
                    assert_eq!(Some(j - w[k].start), best, "n={n} j={j}");
                }
            }
        }
        assert!(windows(10, 4, 4).is_err() && windows(10, 4, 0).is_err());
    }
}
