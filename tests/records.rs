//! Genomic input: the record reader (FASTA, FASTQ, lines; plain and gzip) and `score
//! --input` over records, whose every row must equal scoring that record alone.

use flashconv::records::{Case, Format, Record, Records};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flashconv-records-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write input");
}

fn gzip(path: &Path, bytes: &[u8]) {
    let file = std::fs::File::create(path).expect("create gz");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip end");
}

fn read_all(path: &Path) -> (Format, Vec<Record>) {
    let records = Records::open(path).expect("open");
    let format = records.format();
    (format, records.map(|r| r.expect("record")).collect())
}

fn rec(id: &str, seq: &str) -> Record {
    Record {
        id: id.into(),
        seq: seq.as_bytes().to_vec(),
    }
}

/// The FASTA of the tests: multi-line records, a Windows line end, `N`, lower case, an
/// IUPAC code, an empty record, a description after the id, and a record of `long`
/// bases.
fn fasta(long: usize) -> Vec<u8> {
    let mut f = b">seq1 first record\nACGTACGTNN\nacgtACGT\r\n>empty\n>long\n".to_vec();
    f.extend(std::iter::repeat_n(b'G', long));
    f.extend_from_slice(b"\n>iupac\tdesc\nACGTRYKM\nAC\n");
    f
}

#[test]
fn fasta_fastq_and_lines_plain_and_gzip() {
    let dir = scratch("reader");
    let expected = vec![
        rec("seq1", "ACGTACGTNNacgtACGT"),
        rec("empty", ""),
        rec("long", &"G".repeat(300)),
        rec("iupac", "ACGTRYKMAC"),
    ];
    let fa = fasta(300);
    write(&dir.join("a.fa"), &fa);
    gzip(&dir.join("a.fa.gz"), &fa);
    for name in ["a.fa", "a.fa.gz"] {
        assert_eq!(
            read_all(&dir.join(name)),
            (Format::Fasta, expected.clone()),
            "{name}"
        );
    }
    // bgzip-style: two gzip members, read as one stream.
    let (a, b) = fa.split_at(40);
    let mut two = Vec::new();
    for part in [a, b] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).expect("gzip");
        two.extend(gz.finish().expect("gzip end"));
    }
    write(&dir.join("b.fa.gz"), &two);
    assert_eq!(read_all(&dir.join("b.fa.gz")), (Format::Fasta, expected));

    let fq = b"@r1 x\nACGT\n+\nIIII\n@r2\nNNac\n+\n!!!!\n";
    write(&dir.join("a.fq"), fq);
    let want = vec![rec("r1", "ACGT"), rec("r2", "NNac")];
    assert_eq!(read_all(&dir.join("a.fq")), (Format::Fastq, want));

    write(&dir.join("a.txt"), b"ACGT\r\n\nggcc\n");
    let want = vec![
        rec("line 1", "ACGT"),
        rec("line 2", ""),
        rec("line 3", "ggcc"),
    ];
    assert_eq!(read_all(&dir.join("a.txt")), (Format::Lines, want));

    write(&dir.join("none.fa"), b"");
    assert_eq!(read_all(&dir.join("none.fa")).1, vec![]);
    assert_eq!(rec("x", "acgN").text(Case::Upper), "ACGN");
    assert_eq!(rec("x", "acgN").text(Case::Keep), "acgN");
}

#[test]
fn malformed_records_name_the_file_and_record() {
    let dir = scratch("bad");
    // A FASTQ record whose qualities are shorter than its bases.
    let path = dir.join("bad.fq");
    write(&path, b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nII\n");
    let got: Vec<_> = Records::open(&path).expect("open").collect();
    assert!(got[0].is_ok(), "{:?}", got[0]);
    let err = got[1].as_ref().expect_err("r2 is malformed").to_string();
    assert!(err.contains("bad.fq") && err.contains("record 2"), "{err}");
    assert_eq!(got.len(), 2, "nothing is read after a malformed record");
    let missing = Records::open(&dir.join("missing.fa")).expect_err("no file");
    assert!(missing.to_string().contains("missing.fa"), "{missing}");
}

fn flashconv(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flashconv"))
        .args(args)
        .output()
        .expect("run flashconv")
}

/// The NLL `score --text SEQ --json` gives for one sequence.
fn nll_alone(model: &str, text: &str, extra: &[&str]) -> f64 {
    let out = flashconv(
        &[
            &["score", "--model", model, "--json", "--text", text],
            extra,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["nll"].as_f64().expect("nll")
}

/// `embed --model MODEL --input INPUT --out OUT` and `extra`.
fn embed(model: &str, input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let (input, out) = (input.to_str().expect("path"), out.to_str().expect("path"));
    flashconv(
        &[
            &["embed", "--model", model, "--input", input, "--out", out][..],
            extra,
        ]
        .concat(),
    )
}

/// The hidden states `score SOURCE --hidden` writes for one sequence (`source`: e.g.
/// `--text SEQ` or `--ids LIST`), into `path`: their shape and values.
fn hidden_alone(model: &str, source: &[&str], path: &Path) -> (Vec<usize>, Vec<f64>) {
    let h = path.to_str().expect("path");
    let run = flashconv(&[&["score", "--model", model][..], source, &["--hidden", h]].concat());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (_, shape, values) = tensors(path).swap_remove(0);
    (shape, values)
}

#[test]
fn score_rows_equal_each_record_scored_alone() {
    let dir = scratch("score");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf_tiny");
    // max_seq_len 160: the 200-base record is too long.
    let fa = fasta(200);
    write(&dir.join("a.fa"), &fa);
    gzip(&dir.join("a.fa.gz"), &fa);
    let mut tables = Vec::new();
    let configs: [(&str, &[&str]); 4] = [
        ("a.fa", &[]),
        ("a.fa.gz", &[]),
        ("a.fa", &["--uppercase"]),
        // One record per session rather than all three side by side (padded).
        ("a.fa", &["--batch", "1"]),
    ];
    for (name, extra) in configs {
        let out_path = dir.join(format!("{name}{}.tsv", extra.join("")));
        let out = flashconv(
            &[
                &["score", "--model", model, "--input"][..],
                &[
                    dir.join(name).to_str().expect("path"),
                    "--out",
                    out_path.to_str().expect("path"),
                ],
                extra,
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(1), "a record failed: exit status 1");
        let table = std::fs::read_to_string(&out_path).expect("rows");
        let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(
            rows[0],
            ["id", "tokens", "nll", "mean_nll", "perplexity", "error"]
        );
        let ids: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
        assert_eq!(ids, ["seq1", "empty", "long", "iupac"], "input order");
        for (row, text) in rows[1..]
            .iter()
            .zip(["ACGTACGTNNacgtACGT", "", "", "ACGTRYKMAC"])
        {
            if row[0] == "long" {
                assert!(row[5].contains("160") && row[2].is_empty(), "{row:?}");
                continue;
            }
            let nll: f64 = row[2].parse().expect("nll");
            let case = if extra.contains(&"--uppercase") {
                extra
            } else {
                &[]
            };
            let alone = nll_alone(model, text, case);
            let rel = (nll - alone).abs() / alone.abs().max(1e-12);
            assert!(
                rel <= 1e-5 || (nll == 0.0 && alone == 0.0),
                "{row:?}: {nll} vs {alone}"
            );
            assert!(row[5].is_empty(), "{row:?}");
        }
        tables.push(table);
    }
    assert_eq!(tables[0], tables[1], "the gzip copy gives the same rows");
    assert_ne!(tables[0], tables[2], "lower case is [UNK] unless folded");
}

/// The tensors of a safetensors file: (name, shape, f32 values or i64 as f64).
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    let bytes = std::fs::read(path).expect("shard");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let values = match t.dtype() {
                safetensors::Dtype::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(t.data())
                    .into_iter()
                    .map(f64::from)
                    .collect(),
                safetensors::Dtype::I64 => bytemuck::pod_collect_to_vec::<u8, i64>(t.data())
                    .into_iter()
                    .map(|v| v as f64)
                    .collect(),
                other => panic!("unexpected dtype {other:?}"),
            };
            (name, t.shape().to_vec(), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn mean_embeddings_equal_the_mean_of_score_hidden() {
    let dir = scratch("embed");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf_tiny");
    write(&dir.join("a.fa"), &fasta(200));
    let out = dir.join("out");
    let run = embed(model, &dir.join("a.fa"), &out, &["--shard-records", "3"]);
    assert_eq!(run.status.code(), Some(1), "the long record fails");
    let index = std::fs::read_to_string(out.join("index.tsv")).expect("index");
    let lines: Vec<Vec<&str>> = index.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines[0], ["shard", "row", "id", "tokens", "error"]);
    assert_eq!(lines.len(), 5, "{index}");
    assert!(
        lines[3][4].contains("160") && lines[3][1].is_empty(),
        "{:?}",
        lines[3]
    );
    for (line, text) in lines[1..]
        .iter()
        .zip(["ACGTACGTNNacgtACGT", "", "", "ACGTRYKMAC"])
    {
        if line[2] == "long" {
            continue;
        }
        let shard = tensors(&out.join(line[0]));
        let (_, shape, emb) = &shard[0];
        let d = shape[1];
        let row: usize = line[1].parse().expect("row");
        let got = &emb[row * d..(row + 1) * d];
        let hidden_path = dir.join(format!("{}.safetensors", line[2]));
        let (hs, hidden) = hidden_alone(model, &["--text", text], &hidden_path);
        let n = hs[0];
        assert_eq!(n.to_string(), line[3], "tokens");
        for (c, &g) in got.iter().enumerate() {
            let mean = (0..n).map(|t| hidden[t * d + c]).sum::<f64>() / n as f64;
            assert!(
                (g - mean).abs() <= 1e-5 * mean.abs().max(1.0),
                "{}: {g} vs {mean}",
                line[2]
            );
        }
    }
}

/// 240 records of 20 to 139 bases, some lower case.
fn many_records() -> String {
    let mut fa = String::new();
    let mut x = 7u64;
    for i in 0..240 {
        fa.push_str(&format!(">r{i}\n"));
        for _ in 0..20 + i % 120 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            fa.push(b"ACGTNacgt"[(x >> 33) as usize % 9] as char);
        }
        fa.push('\n');
    }
    fa
}

/// Runs `args(out)` once whole and once killed (SIGKILL) after the manifest
/// `manifest(out)` counts `at_least` records, then again: the directories holding the
/// outputs must end byte for byte the same.
fn killed_run_resumes(
    name: &str,
    args: impl Fn(&Path) -> Vec<String>,
    manifest: impl Fn(&Path) -> PathBuf,
    at_least: usize,
) {
    let dir = scratch(name);
    let run = |out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_flashconv"))
            .args(args(out))
            .output()
    };
    let (whole, killed) = (dir.join("whole"), dir.join("killed"));
    for d in [&whole, &killed] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let first = run(&whole).expect("run");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_flashconv"))
        .args(args(&killed))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let done = || -> usize {
        std::fs::read(manifest(&killed))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["records_done"].as_u64())
            .unwrap_or(0) as usize
    };
    let start = std::time::Instant::now();
    while done() < at_least && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let at_kill = done();
    assert!(
        (at_least..240).contains(&at_kill),
        "killed after {at_kill} of 240 records"
    );
    let rerun = run(&killed).expect("rerun");
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let names = |dir: &Path| -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&whole), names(&killed), "the same files");
    assert!(names(&whole).len() >= 2, "{:?}", names(&whole));
    for name in names(&whole) {
        let (a, b) = (
            std::fs::read(whole.join(&name)),
            std::fs::read(killed.join(&name)),
        );
        assert!(
            a.expect("whole") == b.expect("killed"),
            "{name} differs after the resume"
        );
    }
}

#[test]
fn a_killed_embed_run_resumes_to_the_same_files() {
    let dir = scratch("resume-input");
    write(&dir.join("r.fa"), many_records().as_bytes());
    let input = dir.join("r.fa");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf_tiny");
    let args = |out: &Path| -> Vec<String> {
        let (input, out) = (input.to_str().expect("path"), out.to_str().expect("path"));
        // Chunks of 4 batches of 2 do not divide shards of 12: the resumed run must
        // still group its records as the whole run does.
        let a = ["embed", "--model", model, "--input", input, "--out", out];
        [&a[..], &["--shard-records", "12", "--batch", "2"]]
            .concat()
            .into_iter()
            .map(String::from)
            .collect()
    };
    killed_run_resumes("resume-embed", args, |out| out.join("manifest.json"), 12);
}

#[test]
fn a_killed_score_run_resumes_to_the_same_rows() {
    let dir = scratch("resume-score-input");
    write(&dir.join("r.fa"), many_records().as_bytes());
    let input = dir.join("r.fa");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf_tiny");
    let args = |out: &Path| -> Vec<String> {
        let rows = out.join("rows.tsv");
        let (input, rows) = (input.to_str().expect("path"), rows.to_str().expect("path"));
        let a = [
            "score", "--model", model, "--input", input, "--out", rows, "--batch", "2",
        ];
        a.into_iter().map(String::from).collect()
    };
    killed_run_resumes(
        "resume-score",
        args,
        |out| out.join("rows.tsv.manifest.json"),
        8,
    );
}

#[test]
fn shards_of_a_run_hold_every_record_once() {
    let dir = scratch("shards");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf_tiny");
    write(&dir.join("a.fa"), &fasta(200));
    let input = dir.join("a.fa");
    let rows = |shard: &[&str]| -> Vec<String> {
        let out = flashconv(
            &[
                &[
                    "score",
                    "--model",
                    model,
                    "--input",
                    input.to_str().expect("path"),
                    "--jsonl",
                ][..],
                shard,
            ]
            .concat(),
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(String::from)
            .collect()
    };
    // (id, nll or error) of each row: the records that share a session change the last
    // bits of the nll, so the shards' rows are compared within the tolerance.
    let parsed = |rows: Vec<String>| -> Vec<(String, Option<f64>)> {
        rows.iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_str(r).expect("json");
                (v["id"].as_str().expect("id").to_string(), v["nll"].as_f64())
            })
            .collect()
    };
    let whole = parsed(rows(&[]));
    assert_eq!(whole.len(), 4);
    let (a, b) = (
        parsed(rows(&["--shard", "0/2"])),
        parsed(rows(&["--shard", "1/2"])),
    );
    for (part, want) in [(a, [0, 2]), (b, [1, 3])] {
        assert_eq!(part.len(), 2, "{part:?}");
        for ((id, nll), w) in part.iter().zip(want) {
            assert_eq!(id, &whole[w].0, "record {w}");
            match (nll, whole[w].1) {
                (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-5 * y.abs().max(1e-12)),
                (x, y) => assert_eq!(*x, y, "{id}"),
            }
        }
    }
    let bad = flashconv(&[
        "score", "--model", model, "--input", "x.fa", "--shard", "2/2",
    ]);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("I/N"),
        "bad --shard is named"
    );
}

#[test]
fn long_records_are_scored_in_windows() {
    let dir = scratch("windows");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf_tiny");
    // 300 bases of a varying pattern, then [SEP]: 301 tokens, more than max_seq_len 160.
    let bases: String = (0..300)
        .map(|i| ['A', 'C', 'G', 'T', 'N'][(i * i + i / 7) % 5])
        .collect();
    write(
        &dir.join("a.fa"),
        format!(">long\n{bases}\n>short\nACGT\n").as_bytes(),
    );
    let out = flashconv(&[
        "score",
        "--model",
        model,
        "--input",
        dir.join("a.fa").to_str().expect("path"),
        "--jsonl",
        "--window",
        "160",
        "--stride",
        "60",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows[0]["tokens"], 301);
    // The oracle, from the definition: token j is predicted in the window with the
    // earliest start s (0, 60, 120, ...) that holds j - 1 and j; its log-probability
    // is that of `score --ids` over the window's tokens.
    let code = |c: char| "ACGTN".find(c).expect("base") as u32 + 7;
    let ids: Vec<u32> = bases.chars().map(code).chain([1]).collect();
    let mut per_window = std::collections::BTreeMap::new();
    let mut nll = 0.0;
    for j in 1..ids.len() {
        let s = (0..)
            .map(|k| 60 * k)
            .find(|&s| s < j && j < s + 160)
            .expect("a window");
        let lp = per_window.entry(s).or_insert_with(|| {
            let slice = &ids[s..(s + 160).min(ids.len())];
            let list: Vec<String> = slice.iter().map(|i| i.to_string()).collect();
            let run = flashconv(&[
                "score",
                "--model",
                model,
                "--json",
                "--ids",
                &list.join(","),
            ]);
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
            v["logprobs"]
                .as_array()
                .expect("logprobs")
                .iter()
                .map(|x| x.as_f64().expect("f64"))
                .collect::<Vec<f64>>()
        });
        nll -= lp[j - s - 1];
    }
    assert_eq!(per_window.len(), 4, "windows at 0, 60, 120, 180");
    let got = rows[0]["nll"].as_f64().expect("nll");
    assert!((got - nll).abs() <= 1e-5 * nll.abs(), "{got} vs {nll}");
    assert!(
        rows[1]["nll"].as_f64().is_some(),
        "a short record runs whole"
    );

    // embed: position t's hidden state from the first window that holds it.
    let out_dir = dir.join("emb");
    let window = ["--window", "160", "--stride", "60"];
    let run = embed(model, &dir.join("a.fa"), &out_dir, &window);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (_, shape, emb) = &tensors(&out_dir.join("shard-00000.safetensors"))[0];
    let d = shape[1];
    let mut sum = vec![0f64; d];
    let mut hiddens = std::collections::BTreeMap::new();
    for t in 0..ids.len() {
        let s = (0..)
            .map(|k| 60 * k)
            .find(|&s| s <= t && t < s + 160)
            .expect("a window");
        let path = dir.join(format!("h{s}.safetensors"));
        let hidden = hiddens.entry(s).or_insert_with(|| {
            let slice = &ids[s..(s + 160).min(ids.len())];
            let list: Vec<String> = slice.iter().map(|i| i.to_string()).collect();
            hidden_alone(model, &["--ids", &list.join(",")], &path).1
        });
        for (c, v) in sum.iter_mut().enumerate() {
            *v += hidden[(t - s) * d + c];
        }
    }
    for (c, s) in sum.iter().enumerate() {
        let mean = s / ids.len() as f64;
        assert!(
            (emb[c] - mean).abs() <= 1e-5 * mean.abs().max(1.0),
            "{c}: {} vs {mean}",
            emb[c]
        );
    }
}
