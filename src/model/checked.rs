//! Reading an untrusted safetensors file: its framing checked completely with messages
//! that name the tensor ([`check_safetensors`]), then each tensor against the config
//! (`Reader`: names, shapes, dtypes, finite values, the shared Sin frequency's aliases).

use super::{positional_embedding, prefix, Layer, Linear};
use crate::config::Config;
use crate::error::{Error, Result};
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use std::collections::BTreeSet;
use std::path::Path;

/// Largest safetensors header flashconv reads, in bytes (the `safetensors` crate's own
/// limit, 100 MB; real headers are a few hundred KB at most).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// What to do about a corrupt weights file (appended to framing errors).
pub(super) const REEXPORT: &str = "the file is corrupt or not safetensors: download or export it \
                        again (tools/convert_checkpoint.py writes a valid one)";

/// The entries of a safetensors header in file order, duplicates kept (a JSON object
/// read into a map would silently keep only the last of two equal names).
pub(super) struct HeaderEntries(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for HeaderEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = HeaderEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object mapping tensor names to their entries")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<HeaderEntries, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    v.push(entry);
                }
                Ok(HeaderEntries(v))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// Checks the framing of a safetensors file completely, with messages that name the
/// tensor, before the `safetensors` crate reads it: its own checks name no tensor for
/// most problems, and its final size check (`end + 8 + header length`) can overflow on
/// offsets near `usize::MAX`, which panics in builds with overflow checks.
pub(super) fn check_safetensors(bytes: &[u8], path: &Path) -> Result<()> {
    check_framing(bytes).map_err(|msg| Error::Weights {
        path: path.to_path_buf(),
        msg: format!("{msg}; {REEXPORT}"),
    })
}

/// [`check_safetensors`] with the problem as a message (without the advice).
fn check_framing(bytes: &[u8]) -> std::result::Result<(), String> {
    let (header, data_len) = header_of(bytes)?;
    let entries: HeaderEntries = serde_json::from_str(header)
        .map_err(|e| format!("the header is not a JSON object of tensor entries ({e})"))?;
    let mut names = BTreeSet::new();
    let mut spans: Vec<(usize, usize, String)> = Vec::with_capacity(entries.0.len());
    for (name, value) in entries.0 {
        if !names.insert(name.clone()) {
            return Err(format!("tensor '{name}' is listed twice in the header"));
        }
        if name == "__metadata__" {
            check_metadata(&value)?;
            continue;
        }
        let (b, e) = check_entry(&name, value, data_len)?;
        spans.push((b, e, name));
    }
    check_spans(spans, data_len)
}

/// The header (as text) and the length of the data section after it.
fn header_of(bytes: &[u8]) -> std::result::Result<(&str, usize), String> {
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(format!(
            "the file is {} bytes long, shorter than the 8-byte header length that starts \
             every safetensors file: it is truncated or empty",
            bytes.len()
        ));
    };
    let n = u64::from_le_bytes(*len_bytes);
    let rest = bytes.len() - 8;
    if n > MAX_HEADER_LEN {
        return Err(format!(
            "the header length field says {n} bytes, more than the {MAX_HEADER_LEN}-byte \
             limit for a safetensors header"
        ));
    }
    let n = n as usize; // <= MAX_HEADER_LEN
    if n > rest {
        return Err(format!(
            "the header length field says {n} bytes but only {rest} bytes follow it: the \
             file is truncated"
        ));
    }
    let header = std::str::from_utf8(&bytes[8..8 + n])
        .map_err(|e| format!("the header is not UTF-8 ({e})"))?;
    Ok((header, rest - n))
}

/// The `__metadata__` entry: null, or a map of strings to strings.
fn check_metadata(value: &serde_json::Value) -> std::result::Result<(), String> {
    match value {
        serde_json::Value::Null => Ok(()),
        serde_json::Value::Object(m) if m.values().all(|v| v.is_string()) => Ok(()),
        _ => Err(format!(
            "'__metadata__' must map strings to strings, got {value}"
        )),
    }
}

/// One tensor's header entry: well formed, its offsets inside the data section of
/// `data_len` bytes, its shape's size equal to theirs. Returns its offsets.
fn check_entry(
    name: &str,
    value: serde_json::Value,
    data_len: usize,
) -> std::result::Result<(usize, usize), String> {
    let info: TensorInfo = serde_json::from_value(value).map_err(|e| {
        format!(
            "tensor '{name}' has a malformed header entry ({e}); an entry is \
             {{\"dtype\": \"F32\", \"shape\": [..], \"data_offsets\": [begin, end]}}"
        )
    })?;
    let (b, e) = info.data_offsets;
    if b > e {
        return Err(format!(
            "tensor '{name}' has data_offsets [{b}, {e}] that end before they begin"
        ));
    }
    if e > data_len {
        return Err(format!(
            "tensor '{name}' has data_offsets [{b}, {e}] but the data section is only \
             {data_len} bytes: the file is truncated"
        ));
    }
    let bits = info
        .shape
        .iter()
        .try_fold(1usize, |acc, &x| acc.checked_mul(x))
        .and_then(|elems| elems.checked_mul(info.dtype.bitsize()));
    match bits {
        None => Err(format!(
            "tensor '{name}' has shape {:?}, whose size overflows",
            info.shape
        )),
        Some(bits) if bits % 8 != 0 || bits / 8 != e - b => {
            let needs = if bits % 8 == 0 {
                format!("{} bytes", bits / 8)
            } else {
                format!("{bits} bits (not a whole number of bytes)")
            };
            Err(format!(
                "tensor '{name}' ({:?}, shape {:?}) needs {needs} but its data_offsets \
                 [{b}, {e}] hold {} bytes",
                info.dtype,
                info.shape,
                e - b
            ))
        }
        Some(_) => Ok((b, e)),
    }
}

/// The tensors' offsets tile the data section of `data_len` bytes: no overlap, no gap,
/// nothing after the last.
fn check_spans(
    mut spans: Vec<(usize, usize, String)>,
    data_len: usize,
) -> std::result::Result<(), String> {
    spans.sort();
    let mut end = 0;
    let mut prev: Option<(usize, usize, &str)> = None;
    for (b, e, name) in &spans {
        if *b < end {
            let (pb, pe, pn) = prev.unwrap_or((0, 0, ""));
            return Err(format!(
                "tensors '{pn}' (data_offsets [{pb}, {pe}]) and '{name}' ([{b}, {e}]) \
                 overlap"
            ));
        }
        if *b > end {
            return Err(format!(
                "bytes {end}..{b} of the data section, before tensor '{name}', belong to no \
                 tensor"
            ));
        }
        end = *e;
        prev = Some((*b, *e, name));
    }
    if end != data_len {
        return Err(format!(
            "the last {} bytes of the file belong to no tensor (the tensors end at data \
             offset {end}, the data section is {data_len} bytes)",
            data_len - end
        ));
    }
    Ok(())
}

/// A `safetensors` crate error as an [`Error::Weights`] that names the file and says
/// what to do. [`check_safetensors`] catches all of these first; this is the fallback.
pub(super) fn safetensors_error(e: SafeTensorError, path: &Path) -> Error {
    use SafeTensorError as S;
    let what = match &e {
        S::InvalidOffset(name) => format!(
            "tensor '{name}' has invalid data_offsets (out of order, overlapping or leaving \
             a gap)"
        ),
        S::TensorNotFound(name) => format!("tensor '{name}' is not in the file"),
        S::HeaderTooLarge | S::HeaderTooSmall | S::InvalidHeaderLength => {
            "the header length is invalid (truncated file?)".to_string()
        }
        S::MetadataIncompleteBuffer => {
            "the tensors do not cover the data section exactly (truncated file or trailing \
             bytes)"
                .to_string()
        }
        S::TensorInvalidInfo | S::ValidationOverflow | S::MisalignedSlice => {
            "a tensor's dtype, shape and data_offsets disagree".to_string()
        }
        _ => "the header is malformed".to_string(),
    };
    Error::Weights {
        path: path.to_path_buf(),
        msg: format!("not a valid safetensors file: {what} ({e}); {REEXPORT}"),
    }
}

/// The layer index of a tensor named `hyena.backbone.layers.{i}.…`.
pub(super) fn layer_index(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("hyena.backbone.layers.")?;
    rest.split('.').next()?.parse().ok()
}

/// The module index of a tensor named `….mixer.filter_fn.implicit_filter.{k}.…`.
pub(super) fn implicit_index(name: &str) -> Option<usize> {
    let (_, rest) = name.split_once(".mixer.filter_fn.implicit_filter.")?;
    rest.split('.').next()?.parse().ok()
}

/// Reads tensors by name, checking dtype and shape, remembering which were used.
pub(super) struct Reader<'a> {
    pub(super) st: SafeTensors<'a>,
    pub(super) path: &'a Path,
    pub(super) used: BTreeSet<String>,
}

impl Reader<'_> {
    pub(super) fn err(&self, msg: String) -> Error {
        Error::Weights {
            path: self.path.to_path_buf(),
            msg,
        }
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// The tensor `name` as f32, which must have `shape` (or the same elements with
    /// size-1 axes added or dropped); `dims` says which config fields size it.
    pub(super) fn get(&mut self, name: &str, shape: &[usize], dims: &str) -> Result<Vec<f32>> {
        let view = self.st.tensor(name).map_err(|_| {
            self.err(format!(
                "missing tensor '{name}' (expected shape {shape:?} = {dims} from config.json); \
                 check that the checkpoint is a HyenaDNA model in the Hugging Face layout \
                 (tools/convert_checkpoint.py renames other layouts)"
            ))
        })?;
        let squeeze = |s: &[usize]| s.iter().copied().filter(|&x| x != 1).collect::<Vec<_>>();
        if squeeze(view.shape()) != squeeze(shape) {
            return Err(self.err(format!(
                "tensor '{name}' has shape {:?}, expected {shape:?} = {dims} from config.json: \
                 the config does not match the checkpoint",
                view.shape()
            )));
        }
        if view.dtype() != Dtype::F32 {
            return Err(self.err(format!(
                "tensor '{name}' has dtype {:?}; flashconv reads F32 (convert with \
                 tools/convert_checkpoint.py, which casts to float32)",
                view.dtype()
            )));
        }
        let data = view.data();
        let vals: Vec<f32> = data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(bad) = vals.iter().position(|v| !v.is_finite()) {
            return Err(self.err(format!(
                "tensor '{name}' holds a non-finite value ({}) at element {bad}: the \
                 checkpoint is corrupt or diverged in training",
                vals[bad]
            )));
        }
        self.used.insert(name.to_string());
        Ok(vals)
    }

    /// The file must hold tensors for exactly the layers `0..n_layer`.
    pub(super) fn check_layer_count(&self, c: &Config) -> Result<()> {
        let names = self.st.names();
        let present: BTreeSet<usize> = names.iter().filter_map(|n| layer_index(n)).collect();
        if let Some(&top) = present.last() {
            if top >= c.n_layer {
                return Err(self.err(format!(
                    "the file has tensors for layer {top} but config.json has n_layer = {}: \
                     the config does not match the checkpoint (set n_layer to the number of \
                     layers in the file)",
                    c.n_layer
                )));
            }
        }
        if let Some(i) = (0..c.n_layer).find(|i| !present.contains(i)) {
            return Err(self.err(format!(
                "config.json has n_layer = {} but the file has no tensors for layer {i} \
                 ('hyena.backbone.layers.{i}.*'): the config does not match the checkpoint",
                c.n_layer
            )));
        }
        Ok(())
    }

    /// Tensors nobody read: an error if they show a config mismatch, else a warning.
    pub(super) fn check_unused(&self, c: &Config) -> Result<()> {
        let n_modules = 2 * (c.num_inner_mlps + 2) - 1; // implicit_filter.0 ..= .{2(n+1)}
        let mut ignored = Vec::new();
        for name in self.st.names() {
            if self.used.contains(name) {
                continue;
            }
            if let Some(k) = implicit_index(name) {
                if k >= n_modules {
                    return Err(self.err(format!(
                        "tensor '{name}' is filter-MLP module {k}, but config.json has \
                         num_inner_mlps = {} (modules 0..={}): the config does not match \
                         the checkpoint",
                        c.num_inner_mlps,
                        n_modules - 1
                    )));
                }
            }
            ignored.push(name.to_string());
        }
        if !ignored.is_empty() {
            ignored.sort();
            log::warn!(
                "{}: ignoring {} tensor(s) flashconv does not use: {ignored:?}",
                self.path.display(),
                ignored.len()
            );
        }
        Ok(())
    }

    pub(super) fn layer(
        &mut self,
        c: &Config,
        i: usize,
        pos_emb: &mut Option<(Vec<f32>, Vec<f32>)>,
    ) -> Result<Layer> {
        let p = prefix(i);
        let f = format!("{p}mixer.filter_fn.");
        let (d, di) = (c.d_model, c.d_inner);
        let (pos_z, pos_t) = self.pos_emb(c, i, &f, pos_emb)?;
        let implicit = self.implicit_filter(c, &f)?;
        let freq = self.shared_freq(c, i, &f)?;
        let (vd, v3d) = ("[d_model]", "[3 d_model]");
        Ok(Layer {
            norm1_w: self.get(&format!("{p}norm1.weight"), &[d], vd)?,
            norm1_b: self.get(&format!("{p}norm1.bias"), &[d], vd)?,
            in_proj_w: self.get(
                &format!("{p}mixer.in_proj.weight"),
                &[3 * d, d],
                "[3 d_model, d_model]",
            )?,
            in_proj_b: self.get(&format!("{p}mixer.in_proj.bias"), &[3 * d], v3d)?,
            short_w: self.get(
                &format!("{p}mixer.short_filter.weight"),
                &[3 * d, 1, 3],
                "[3 d_model, 1, short_filter_order]",
            )?,
            short_b: self.get(&format!("{p}mixer.short_filter.bias"), &[3 * d], v3d)?,
            out_proj_w: self.get(
                &format!("{p}mixer.out_proj.weight"),
                &[d, d],
                "[d_model, d_model]",
            )?,
            out_proj_b: self.get(&format!("{p}mixer.out_proj.bias"), &[d], vd)?,
            filter_bias: self.get(&format!("{f}bias"), &[d], vd)?,
            pos_z,
            pos_t,
            implicit,
            freq,
            deltas: self.get(
                &format!("{f}modulation.deltas"),
                &[1, 1, d],
                "[1, 1, d_model]",
            )?,
            norm2_w: self.get(&format!("{p}norm2.weight"), &[d], vd)?,
            norm2_b: self.get(&format!("{p}norm2.bias"), &[d], vd)?,
            fc1_w: self.get(
                &format!("{p}mlp.fc1.weight"),
                &[di, d],
                "[d_inner, d_model]",
            )?,
            fc1_b: self.get(&format!("{p}mlp.fc1.bias"), &[di], "[d_inner]")?,
            fc2_w: self.get(
                &format!("{p}mlp.fc2.weight"),
                &[d, di],
                "[d_model, d_inner]",
            )?,
            fc2_b: self.get(&format!("{p}mlp.fc2.bias"), &[d], vd)?,
        })
    }

    /// Layer `i`'s positional embedding (`z`, `t`), or, when the checkpoint lacks it,
    /// the one HF initialises (computed once, in `computed`).
    fn pos_emb(
        &mut self,
        c: &Config,
        i: usize,
        f: &str,
        computed: &mut Option<(Vec<f32>, Vec<f32>)>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let (e, l) = (c.emb_dim, c.max_seq_len);
        if self.has(&format!("{f}pos_emb.z")) {
            let z = format!("{f}pos_emb.z");
            return Ok((
                self.get(&z, &[1, l, e], "[1, max_seq_len, emb_dim]")?,
                self.get(&format!("{f}pos_emb.t"), &[1, l, 1], "[1, max_seq_len, 1]")?,
            ));
        }
        log::warn!(
            "{}: layer {i} has no pos_emb.z; recomputing it",
            self.path.display()
        );
        Ok(computed
            .get_or_insert_with(|| positional_embedding(l, e))
            .clone())
    }

    /// The implicit filter's Linear layers (weight, and bias but for the last).
    fn implicit_filter(&mut self, c: &Config, f: &str) -> Result<Vec<Linear>> {
        let (d, o, e) = (c.d_model, c.filter_order, c.emb_dim);
        let n_lin = c.num_inner_mlps + 2;
        let mut implicit = Vec::with_capacity(n_lin);
        for j in 0..n_lin {
            let (inp, out, dims) = match j {
                0 => (e, o, "[filter_order, emb_dim]"),
                _ if j + 1 == n_lin => (o, d, "[d_model, filter_order]"),
                _ => (o, o, "[filter_order, filter_order]"),
            };
            let name = format!("{f}implicit_filter.{}.weight", 2 * j);
            let w = self.get(&name, &[out, inp], dims)?;
            let b = if j + 1 < n_lin {
                let name = format!("{f}implicit_filter.{}.bias", 2 * j);
                Some(self.get(&name, &[out], "[filter_order]")?)
            } else {
                None
            };
            implicit.push((w, b));
        }
        Ok(implicit)
    }

    /// The Sin frequency shared by all Sin layers of layer `i`'s filter: the state dict
    /// may list it under any of its aliases (.1, .3, .5, ...), which must all agree;
    /// without one, `activation_freq` unless the config says it was trained.
    fn shared_freq(&mut self, c: &Config, i: usize, f: &str) -> Result<Vec<f32>> {
        let o = c.filter_order;
        let mut freq: Option<Vec<f32>> = None;
        for j in 0..c.num_inner_mlps + 1 {
            let name = format!("{f}implicit_filter.{}.freq", 2 * j + 1);
            if !self.has(&name) {
                continue;
            }
            let v = self.get(&name, &[1, o], "[1, filter_order]")?;
            if freq.as_ref().is_some_and(|prev| *prev != v) {
                return Err(self.err(format!(
                    "tensor '{name}' differs from another alias of the shared Sin \
                     frequency of layer {i} ({f}implicit_filter.1.freq): the \
                     checkpoint is inconsistent"
                )));
            }
            freq = Some(v);
        }
        match freq {
            Some(v) => Ok(v),
            None if !c.train_freq => Ok(vec![c.activation_freq as f32; o]),
            None => Err(self.err(format!(
                "missing tensor '{f}implicit_filter.1.freq' (config.json has train_freq \
                 true; set it to false to use activation_freq instead)"
            ))),
        }
    }
}
