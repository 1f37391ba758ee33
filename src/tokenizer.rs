//! The HyenaDNA character-level tokenizer: seven special tokens, then one id per
//! character. Like the HF `CharacterTokenizer` it does not upper-case (unknown
//! characters, lower-case letters included, become `[UNK]`) and, for scoring, appends
//! `[SEP]` and adds no leading token.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Names of the special tokens, ids 0..7.
pub const SPECIALS: [&str; 7] = [
    "[CLS]",
    "[SEP]",
    "[BOS]",
    "[MASK]",
    "[PAD]",
    "[RESERVED]",
    "[UNK]",
];
/// Id of `[SEP]` (appended to scored text; the usual end-of-sequence).
pub const SEP: u32 = 1;
/// Id of `[UNK]`.
pub const UNK: u32 = 6;

/// A character tokenizer: ids 0..7 are [`SPECIALS`], then one id per character.
#[derive(Clone, Debug, PartialEq)]
pub struct Tokenizer {
    chars: Vec<char>,
    /// Character -> id (the first occurrence wins, as in a linear search).
    ids: HashMap<char, u32>,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::dna()
    }
}

impl Tokenizer {
    /// HyenaDNA's DNA vocabulary: A=7 C=8 G=9 T=10 N=11.
    pub fn dna() -> Self {
        Self::from_chars("ACGTN".chars().collect())
    }

    /// A tokenizer over the given characters (ids from 7 on).
    pub fn from_chars(chars: Vec<char>) -> Self {
        let mut ids = HashMap::with_capacity(chars.len());
        for (i, &c) in chars.iter().enumerate() {
            let id = u32::try_from(i + SPECIALS.len()).unwrap_or(u32::MAX);
            ids.entry(c).or_insert(id);
        }
        Tokenizer { chars, ids }
    }

    /// Reads `tokenizer_config.json` beside the model if it has a `characters` list
    /// (as HyenaDNA's tokenizer takes), else the DNA vocabulary. A missing file means
    /// the DNA vocabulary; a file that exists but cannot be read, is not UTF-8 or is
    /// malformed (see [`from_config_json`](Self::from_config_json)) is an error naming
    /// it.
    pub fn for_model_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer_config.json");
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|e| {
                Error::Tokenizer(format!(
                    "{}: not UTF-8 text ({e}); fix or delete the file (without it the DNA \
                     vocabulary is used)",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::dna()),
            Err(source) => return Err(Error::Io { path, source }),
        };
        Self::from_config_json(&text, &path)
    }

    /// Parses the text of a `tokenizer_config.json` (`path` is used in messages only):
    /// its `characters` list if it has one, else the DNA vocabulary. Refused, naming the
    /// file: invalid JSON, a top level that is not an object, `characters` that is not a
    /// list, an entry that is not a one-character string, and a character listed twice.
    ///
    /// ```
    /// use flashconv::tokenizer::Tokenizer;
    /// use std::path::Path;
    /// let p = Path::new("tokenizer_config.json");
    /// let t = Tokenizer::from_config_json(r#"{"characters": ["x", "y"]}"#, p)?;
    /// assert_eq!(t.encode("yx"), vec![8, 7]);
    /// assert!(Tokenizer::from_config_json(r#"{"characters": ["xy"]}"#, p).is_err());
    /// # Ok::<(), flashconv::Error>(())
    /// ```
    pub fn from_config_json(text: &str, path: &Path) -> Result<Self> {
        let err = |msg: String| {
            Error::Tokenizer(format!(
                "{}: {msg}; fix or delete the file (without it the DNA vocabulary is used)",
                path.display()
            ))
        };
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| err("the top level is not a JSON object".into()))?;
        let Some(list) = obj.get("characters") else {
            return Ok(Self::dna());
        };
        let list = list
            .as_array()
            .ok_or_else(|| err(format!("'characters' must be a list, got {list}")))?;
        let mut chars: Vec<char> = Vec::with_capacity(list.len());
        let mut seen = std::collections::HashSet::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let mut it = item.as_str().unwrap_or_default().chars();
            match (it.next(), it.next()) {
                (Some(c), None) if !seen.insert(c) => {
                    return Err(err(format!(
                        "'characters' lists {item} twice (entry {i}): each character gets \
                         one id"
                    )))
                }
                (Some(c), None) => chars.push(c),
                _ => {
                    return Err(err(format!(
                        "'characters' entries must be single characters, got {item} \
                         (entry {i})"
                    )))
                }
            }
        }
        Ok(Self::from_chars(chars))
    }

    /// Checks that every id this tokenizer produces exists in a model with
    /// `vocab_size` ids (`config.json`'s field); the error gives both sizes.
    pub fn check_vocab(&self, vocab_size: usize) -> Result<()> {
        if self.vocab_size() > vocab_size {
            return Err(Error::Tokenizer(format!(
                "the tokenizer has {} ids ({} special tokens + {} characters) but config.json \
                 has vocab_size = {vocab_size}: the tokenizer does not belong to this model \
                 (fix tokenizer_config.json's 'characters' or vocab_size)",
                self.vocab_size(),
                SPECIALS.len(),
                self.chars.len()
            )));
        }
        Ok(())
    }

    /// Number of ids this tokenizer produces (specials + characters).
    pub fn vocab_size(&self) -> usize {
        SPECIALS.len() + self.chars.len()
    }

    /// Character ids only, no special tokens (a generation prompt).
    ///
    /// ```
    /// use flashconv::tokenizer::Tokenizer;
    /// let t = Tokenizer::dna();
    /// assert_eq!(t.encode("ACGTN"), vec![7, 8, 9, 10, 11]);
    /// assert_eq!(t.encode_with_sep("ac"), vec![6, 6, 1]); // no upper-casing
    /// ```
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.chars()
            .map(|c| self.ids.get(&c).copied().unwrap_or(UNK))
            .collect()
    }

    /// As the HF tokenizer encodes text for a model: the characters then `[SEP]`.
    pub fn encode_with_sep(&self, text: &str) -> Vec<u32> {
        let mut ids = self.encode(text);
        ids.push(SEP);
        ids
    }

    /// Text of one id: the character, the special token's name, or `<id>` for ids
    /// outside the tokenizer (e.g. padded vocabulary columns).
    pub fn token_str(&self, id: u32) -> String {
        let i = id as usize;
        if let Some(s) = SPECIALS.get(i) {
            return (*s).to_string();
        }
        match self.chars.get(i - SPECIALS.len()) {
            Some(c) => c.to_string(),
            None => format!("<{id}>"),
        }
    }

    /// Concatenated text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter().map(|&i| self.token_str(i)).collect()
    }
}

/// Parses a comma- or space-separated list of token ids (`"0,7,8"`).
pub fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u32>()
                .map_err(|_| Error::input(format!("token id '{p}' is not a non-negative integer")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dna_matches_hf_ids() {
        let t = Tokenizer::dna();
        assert_eq!(t.encode("ACGTN"), vec![7, 8, 9, 10, 11]);
        assert_eq!(t.encode("acgx"), vec![6, 6, 6, 6]);
        assert_eq!(t.encode_with_sep("GA"), vec![9, 7, 1]);
        assert_eq!(t.decode(&[9, 1, 14]), "G[SEP]<14>");
    }

    #[test]
    fn ids_parse_or_name_the_bad_one() {
        assert_eq!(parse_ids("0,7, 8").expect("ok"), vec![0, 7, 8]);
        let e = parse_ids("1,x").expect_err("bad").to_string();
        assert!(e.contains("'x'"), "{e}");
        assert!(parse_ids("-1").is_err());
    }
}
