//! The HyenaDNA character-level tokenizer: seven special tokens, then one id per
//! character. Like the HF `CharacterTokenizer` it does not upper-case (unknown
//! characters, lower-case letters included, become `[UNK]`) and, for scoring, appends
//! `[SEP]` and adds no leading token.

use crate::error::{Error, Result};
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
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self::dna()
    }
}

impl Tokenizer {
    /// HyenaDNA's DNA vocabulary: A=7 C=8 G=9 T=10 N=11.
    pub fn dna() -> Self {
        Tokenizer {
            chars: "ACGTN".chars().collect(),
        }
    }

    /// A tokenizer over the given characters (ids from 7 on).
    pub fn from_chars(chars: Vec<char>) -> Self {
        Tokenizer { chars }
    }

    /// Reads `tokenizer_config.json` beside the model if it has a `characters` list
    /// (as HyenaDNA's tokenizer takes), else the DNA vocabulary.
    pub fn for_model_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer_config.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(Self::dna());
        };
        Self::from_config_json(&text, &path)
    }

    /// The tokenizer described by the text of a `tokenizer_config.json`: its `characters`
    /// list (one single-character string per id, from id 7 on), or the DNA vocabulary if
    /// the file has no such list. `origin` names the file in error messages.
    ///
    /// ```
    /// use flashconv::tokenizer::Tokenizer;
    /// use std::path::Path;
    /// let t = Tokenizer::from_config_json(r#"{"characters": ["a", "b", "\n"]}"#, Path::new("t.json"))?;
    /// assert_eq!(t.encode("ab\nc"), vec![7, 8, 9, 6]);
    /// # Ok::<(), flashconv::Error>(())
    /// ```
    pub fn from_config_json(text: &str, origin: &Path) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::Tokenizer(format!("{}: not valid JSON: {e}", origin.display())))?;
        let Some(list) = v.get("characters") else {
            return Ok(Self::dna());
        };
        let list = list.as_array().ok_or_else(|| {
            Error::Tokenizer(format!("{}: 'characters' must be a list", origin.display()))
        })?;
        let mut chars = Vec::with_capacity(list.len());
        for item in list {
            let s = item.as_str().unwrap_or_default();
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => chars.push(c),
                _ => {
                    return Err(Error::Tokenizer(format!(
                        "{}: 'characters' entries must be single characters, got {item}",
                        origin.display()
                    )))
                }
            }
        }
        Ok(Self::from_chars(chars))
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
            .map(|c| {
                self.chars
                    .iter()
                    .position(|&x| x == c)
                    .map_or(UNK, |i| (i + SPECIALS.len()) as u32)
            })
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
